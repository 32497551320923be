package resilience

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Reason and domain of the google.rpc.ErrorInfo that marks a dependency's outage.
const (
	ReasonDependencyUnavailable = "DEPENDENCY_UNAVAILABLE"
	ErrorDomain                 = "eventshop"
)

// DependencyUnavailable is the status a healthy server answers when a service it
// depends on is unavailable (down, or its breaker open): codes.Unavailable, so
// callers retry later, carrying an ErrorInfo with ReasonDependencyUnavailable and
// the dependency's name, when given, in its metadata. A resilient client retries it like any
// Unavailable, but does not count it against the server's breaker: otherwise the
// shipping service down would open the gateway's breaker to the order service and
// fail the order reads that never touch shipping. message is the status message.
func DependencyUnavailable(dependency, message string) error {
	info := &errdetails.ErrorInfo{Reason: ReasonDependencyUnavailable, Domain: ErrorDomain}
	if dependency != "" {
		info.Metadata = map[string]string{"dependency": dependency}
	}
	st := status.New(codes.Unavailable, message)
	if d, err := st.WithDetails(info); err == nil {
		st = d
	}
	return st.Err()
}

// IsDependencyUnavailable reports whether err is a status made by
// DependencyUnavailable: the server answered, a service behind it did not.
func IsDependencyUnavailable(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok &&
			info.GetReason() == ReasonDependencyUnavailable && info.GetDomain() == ErrorDomain {
			return true
		}
	}
	return false
}

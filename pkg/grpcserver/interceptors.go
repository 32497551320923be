package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// recoverUnary turns a handler panic into codes.Internal. The panic value and stack
// go to the log, never to the client, which might learn internals from them.
func recoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logPanic(ctx, logger, info.FullMethod, r)
				resp, err = nil, status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				logPanic(ss.Context(), logger, info.FullMethod, r)
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(srv, ss)
	}
}

func logPanic(ctx context.Context, logger *slog.Logger, method string, r any) {
	logger.ErrorContext(ctx, "panic in grpc handler", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
}

func validateUnary(v protovalidate.Validator, logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := validate(ctx, v, logger, info.FullMethod, req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func validateStream(v protovalidate.Validator, logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &validatingStream{ServerStream: ss, v: v, logger: logger, method: info.FullMethod})
	}
}

type validatingStream struct {
	grpc.ServerStream
	v      protovalidate.Validator
	logger *slog.Logger
	method string
}

func (s *validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return validate(s.Context(), s.v, s.logger, s.method, m)
}

// validate returns InvalidArgument listing every violated rule, with a BadRequest
// detail per field so clients can point at the offending input.
func validate(ctx context.Context, v protovalidate.Validator, logger *slog.Logger, method string, req any) error {
	msg, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	err := v.Validate(msg)
	if err == nil {
		return nil
	}
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		// A rule that cannot compile or evaluate is our bug, not the caller's.
		logger.ErrorContext(ctx, "request validation failed to run", "method", method, "error", err)
		return status.Error(codes.Internal, "internal error")
	}
	descs := make([]string, 0, len(verr.Violations))
	br := &errdetails.BadRequest{}
	for _, viol := range verr.Violations {
		descs = append(descs, viol.String())
		fv := &errdetails.BadRequest_FieldViolation{
			Field:       protovalidate.FieldPathString(viol.Proto.GetField()),
			Description: viol.Proto.GetMessage(),
			Reason:      viol.Proto.GetRuleId(),
		}
		if fv.Description == "" {
			fv.Description = viol.Proto.GetRuleId()
		}
		br.FieldViolations = append(br.FieldViolations, fv)
	}
	return withDetails(codes.InvalidArgument, "invalid request: "+strings.Join(descs, "; "), br)
}

// FieldError returns a status error of the given code whose message names field
// and whose details carry an errdetails.BadRequest violation for it, the same shape
// request validation produces. Use it for checks protovalidate cannot express.
func FieldError(code codes.Code, field, description string) error {
	br := &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: field, Description: description},
	}}
	return withDetails(code, fmt.Sprintf("invalid request: %s: %s", field, description), br)
}

func withDetails(code codes.Code, msg string, br *errdetails.BadRequest) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(br); err == nil {
		st = d
	}
	return st.Err()
}

package manifest

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	flaggerv1 "github.com/fluxcd/flagger/pkg/apis/flagger/v1beta1"
	networkingv1 "istio.io/api/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/eventshop/eventshop/pkg/config"
)

// PartOfLabel marks the workloads that run eventshop binaries (value PartOf); every
// container of such a Deployment must be a known Binary.
const (
	PartOfLabel = "app.kubernetes.io/part-of"
	PartOf      = "eventshop"
)

// CheckHosts returns an error for every VirtualService or DestinationRule host, and
// every route destination, that names no Service of s. Hosts of a VirtualService
// bound only to ingress gateways are external names and are not resolved; its route
// destinations are.
func CheckHosts(s *Set) error {
	var errs []error
	for _, vs := range s.VirtualServices {
		if servesMesh(vs.Spec) {
			for _, h := range vs.Spec.GetHosts() {
				if s.service(h, vs.Namespace) == nil {
					errs = append(errs, fmt.Errorf("VirtualService %s: host %q names no Service", vs.Name, h))
				}
			}
		}
		for _, d := range destinations(vs.Spec) {
			if s.service(d.GetHost(), vs.Namespace) == nil {
				errs = append(errs, fmt.Errorf("VirtualService %s: route destination %q names no Service", vs.Name, d.GetHost()))
			}
		}
	}
	for _, dr := range s.DestinationRules {
		if s.service(dr.Spec.GetHost(), dr.Namespace) == nil {
			errs = append(errs, fmt.Errorf("DestinationRule %s: host %q names no Service", dr.Name, dr.Spec.GetHost()))
		}
	}
	return errors.Join(errs...)
}

// CheckSubsets returns an error for every DestinationRule subset whose labels, with
// its Service's selector, match the pod template of no Deployment, and for every
// route destination naming a subset no DestinationRule of its host defines.
func CheckSubsets(s *Set) error {
	var errs []error
	for _, dr := range s.DestinationRules {
		svc := s.service(dr.Spec.GetHost(), dr.Namespace)
		for _, sub := range dr.Spec.GetSubsets() {
			want := map[string]string{}
			if svc != nil {
				for k, v := range svc.Spec.Selector {
					want[k] = v
				}
			}
			for k, v := range sub.GetLabels() {
				want[k] = v
			}
			if !slices.ContainsFunc(s.Deployments, func(d *appsv1.Deployment) bool {
				return d.Namespace == dr.Namespace && hasLabels(d.Spec.Template.Labels, want)
			}) {
				errs = append(errs, fmt.Errorf("DestinationRule %s: subset %q selects %v, which no Deployment's pods carry", dr.Name, sub.GetName(), want))
			}
		}
	}
	for _, vs := range s.VirtualServices {
		for _, d := range destinations(vs.Spec) {
			if d.GetSubset() == "" {
				continue
			}
			if !s.subsetDefined(d.GetHost(), vs.Namespace, d.GetSubset()) {
				errs = append(errs, fmt.Errorf("VirtualService %s: destination %s subset %q is defined by no DestinationRule", vs.Name, d.GetHost(), d.GetSubset()))
			}
		}
	}
	return errors.Join(errs...)
}

// CheckWeights returns an error for every HTTP or TCP route of a VirtualService with
// several destinations whose weights do not sum to 100.
func CheckWeights(s *Set) error {
	var errs []error
	for _, vs := range s.VirtualServices {
		for i, r := range vs.Spec.GetHttp() {
			if err := weightsSum(r.GetRoute()); err != nil {
				errs = append(errs, fmt.Errorf("VirtualService %s: http route %d (%s): %w", vs.Name, i, r.GetName(), err))
			}
		}
		for i, r := range vs.Spec.GetTcp() {
			if err := weightsSum(r.GetRoute()); err != nil {
				errs = append(errs, fmt.Errorf("VirtualService %s: tcp route %d: %w", vs.Name, i, err))
			}
		}
	}
	return errors.Join(errs...)
}

type weighted interface{ GetWeight() int32 }

func weightsSum[T weighted](route []T) error {
	if len(route) <= 1 {
		if len(route) == 1 && route[0].GetWeight() != 0 && route[0].GetWeight() != 100 {
			return fmt.Errorf("single destination weighted %d, want 100 or none", route[0].GetWeight())
		}
		return nil
	}
	var sum int32
	for _, d := range route {
		if d.GetWeight() < 0 {
			return fmt.Errorf("negative weight %d", d.GetWeight())
		}
		sum += d.GetWeight()
	}
	if sum != 100 {
		return fmt.Errorf("weights sum to %d, want 100", sum)
	}
	return nil
}

// CheckPrincipals returns an error for every principal of an AuthorizationPolicy
// that names no ServiceAccount of s (as cluster.local/ns/<ns>/sa/<name>) and is not
// one of external (identities installed by others, e.g. the ingress gateway).
// Wildcard principals are errors unless listed in external.
func CheckPrincipals(s *Set, external ...string) error {
	var errs []error
	for _, ap := range s.AuthorizationPolicies {
		for _, rule := range ap.Spec.GetRules() {
			for _, from := range rule.GetFrom() {
				src := from.GetSource()
				for _, p := range append(slices.Clone(src.GetPrincipals()), src.GetNotPrincipals()...) {
					if slices.Contains(external, p) {
						continue
					}
					if !s.principalExists(p) {
						errs = append(errs, fmt.Errorf("AuthorizationPolicy %s: principal %q names no ServiceAccount", ap.Name, p))
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}

// CheckWorkloads returns an error for every container of a Deployment or
// StatefulSet that lacks a readiness or liveness probe, CPU and memory requests and
// limits, runAsNonRoot, a read-only root filesystem, or allowPrivilegeEscalation
// false, and for every eventshop Deployment that no PodDisruptionBudget covers or no
// HorizontalPodAutoscaler scales.
func CheckWorkloads(s *Set) error {
	var errs []error
	for _, d := range s.Deployments {
		errs = append(errs, podErrors("Deployment "+d.Name, d.Spec.Template.Spec)...)
		if d.Labels[PartOfLabel] != PartOf {
			continue
		}
		if !slices.ContainsFunc(s.PDBs, func(p *policyv1.PodDisruptionBudget) bool {
			return p.Namespace == d.Namespace && p.Spec.Selector != nil && hasLabels(d.Spec.Template.Labels, p.Spec.Selector.MatchLabels)
		}) {
			errs = append(errs, fmt.Errorf("Deployment %s: no PodDisruptionBudget covers its pods", d.Name))
		}
		if !slices.ContainsFunc(s.HPAs, func(h *autoscalingv2.HorizontalPodAutoscaler) bool {
			return h.Namespace == d.Namespace && h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name
		}) {
			errs = append(errs, fmt.Errorf("Deployment %s: no HorizontalPodAutoscaler scales it", d.Name))
		}
	}
	for _, st := range s.StatefulSets {
		errs = append(errs, podErrors("StatefulSet "+st.Name, st.Spec.Template.Spec)...)
	}
	return errors.Join(errs...)
}

func podErrors(owner string, pod corev1.PodSpec) []error {
	var errs []error
	podNonRoot := pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot
	for _, c := range pod.Containers {
		where := fmt.Sprintf("%s container %s", owner, c.Name)
		if c.ReadinessProbe == nil {
			errs = append(errs, fmt.Errorf("%s: no readiness probe", where))
		}
		if c.LivenessProbe == nil {
			errs = append(errs, fmt.Errorf("%s: no liveness probe", where))
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Limits[r]; !ok {
				errs = append(errs, fmt.Errorf("%s: no %s limit", where, r))
			}
			if _, ok := c.Resources.Requests[r]; !ok {
				errs = append(errs, fmt.Errorf("%s: no %s request", where, r))
			}
		}
		sc := c.SecurityContext
		nonRoot := podNonRoot
		if sc != nil && sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
		if sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			nonRoot = false
		}
		if !nonRoot {
			errs = append(errs, fmt.Errorf("%s: not runAsNonRoot", where))
		}
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			errs = append(errs, fmt.Errorf("%s: root filesystem is writable", where))
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			errs = append(errs, fmt.Errorf("%s: privilege escalation allowed", where))
		}
		if sc != nil && sc.Privileged != nil && *sc.Privileged {
			errs = append(errs, fmt.Errorf("%s: privileged", where))
		}
	}
	return errs
}

// CheckBinaries returns an error for every container of an eventshop Deployment
// (labelled PartOfLabel=PartOf) that disagrees with its Binary, found by container
// name in bins: an unknown binary; an argument, environment variable or ConfigMap key
// that sets no flag the binary defines; a listen address on loopback or on a port
// that is not the container's port; probes of the wrong kind, port or path; a
// Service port that does not reach it or is not named for its protocol; and a
// service address (a flag ending in "-addr") that names no Service port, or, when its
// host is unspecified (0.0.0.0, ":9464"), a second listener on no container port.
func CheckBinaries(s *Set, bins map[string]Binary) error {
	var errs []error
	for _, d := range s.Deployments {
		if d.Labels[PartOfLabel] != PartOf {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			where := fmt.Sprintf("Deployment %s container %s", d.Name, c.Name)
			bin, ok := bins[c.Name]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: no binary named %q", where, c.Name))
				continue
			}
			for _, err := range s.containerErrors(d, c, bin) {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
		}
	}
	return errors.Join(errs...)
}

// flagValues returns what container c of d sets, by flag name: from ConfigMaps it
// takes with envFrom, literal env values and arguments; and an error for each setting
// that names no flag of bin.
func (s *Set) flagValues(d *appsv1.Deployment, c corev1.Container, bin Binary) (map[string]string, []error) {
	var errs []error
	envFlag := map[string]string{}
	bin.Flags.VisitAll(func(f *flag.Flag) { envFlag[config.EnvName(f.Name)] = f.Name })

	// values holds what the container sets, by flag name.
	values := map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm := s.configMap(ef.ConfigMapRef.Name, d.Namespace)
			if cm == nil {
				errs = append(errs, fmt.Errorf("envFrom ConfigMap %q does not exist", ef.ConfigMapRef.Name))
				continue
			}
			for k, v := range cm.Data {
				name, ok := envFlag[ef.Prefix+k]
				if !ok {
					errs = append(errs, fmt.Errorf("ConfigMap %s key %s sets no flag of the binary", cm.Name, ef.Prefix+k))
					continue
				}
				values[name] = v
			}
		case ef.SecretRef != nil:
			errs = append(errs, fmt.Errorf("envFrom Secret %q: name each key in env instead, so its variable can be checked", ef.SecretRef.Name))
		}
	}
	for _, e := range c.Env {
		if !strings.HasPrefix(e.Name, config.EnvPrefix) {
			continue // GOMAXPROCS and friends belong to the runtime, not to the flags
		}
		name, ok := envFlag[e.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("env %s sets no flag of the binary", e.Name))
			continue
		}
		if e.ValueFrom == nil {
			values[name] = e.Value
		} else if e.ValueFrom.SecretKeyRef == nil && e.ValueFrom.ConfigMapKeyRef == nil && e.ValueFrom.FieldRef == nil {
			errs = append(errs, fmt.Errorf("env %s has an unsupported source", e.Name))
		}
	}
	for _, a := range append(slices.Clone(c.Command[min(1, len(c.Command)):]), c.Args...) {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, v, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if bin.Flags.Lookup(name) == nil {
			errs = append(errs, fmt.Errorf("argument %s sets no flag of the binary", a))
			continue
		}
		values[name] = v
	}

	return values, errs
}

func (s *Set) containerErrors(d *appsv1.Deployment, c corev1.Container, bin Binary) []error {
	values, errs := s.flagValues(d, c, bin)

	// The listen address, as the binary will see it.
	lf := bin.Flags.Lookup(bin.ListenFlag)
	if lf == nil {
		return append(errs, fmt.Errorf("binary has no listen flag -%s", bin.ListenFlag))
	}
	addr, ok := values[bin.ListenFlag]
	if !ok {
		addr = lf.DefValue
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return append(errs, fmt.Errorf("listen address -%s=%q: %w", bin.ListenFlag, addr, err))
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		errs = append(errs, fmt.Errorf("listens on %s, unreachable from the kubelet and the sidecar: set %s to 0.0.0.0:%s", addr, config.EnvName(bin.ListenFlag), portStr))
	}
	port, _ := strconv.Atoi(portStr)
	grpcBin := len(bin.HealthPaths) == 0
	portName := "http"
	if grpcBin {
		portName = "grpc"
	}
	var cport *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].ContainerPort == int32(port) {
			cport = &c.Ports[i]
		}
	}
	if cport == nil {
		errs = append(errs, fmt.Errorf("no containerPort %d, where the binary listens (-%s=%s)", port, bin.ListenFlag, addr))
	} else if cport.Name != portName {
		errs = append(errs, fmt.Errorf("containerPort %d is named %q, want %q", port, cport.Name, portName))
	}

	for kind, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil {
			errs = append(errs, fmt.Errorf("no %s probe", kind))
			continue
		}
		switch {
		case grpcBin && p.GRPC == nil:
			errs = append(errs, fmt.Errorf("%s probe is not a gRPC health probe", kind))
		case grpcBin && p.GRPC.Port != int32(port):
			errs = append(errs, fmt.Errorf("%s probe checks port %d, the binary serves health on %d", kind, p.GRPC.Port, port))
		case !grpcBin && p.HTTPGet == nil:
			errs = append(errs, fmt.Errorf("%s probe is not an HTTP probe", kind))
		case !grpcBin && resolvePort(p.HTTPGet.Port, c) != port:
			errs = append(errs, fmt.Errorf("%s probe checks port %s, the binary listens on %d", kind, p.HTTPGet.Port.String(), port))
		case !grpcBin && !slices.Contains(bin.HealthPaths, p.HTTPGet.Path):
			errs = append(errs, fmt.Errorf("%s probe path %q is none of %v", kind, p.HTTPGet.Path, bin.HealthPaths))
		}
	}

	// A Service must reach the port, under a name Istio reads the protocol from.
	reached := false
	for _, svc := range s.Services {
		if svc.Namespace != d.Namespace || len(svc.Spec.Selector) == 0 || !hasLabels(d.Spec.Template.Labels, svc.Spec.Selector) {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if resolvePort(sp.TargetPort, c) != port {
				continue
			}
			reached = true
			if sp.Name != portName && !strings.HasPrefix(sp.Name, portName+"-") {
				errs = append(errs, fmt.Errorf("Service %s port %d is named %q; Istio needs %q (or %q-suffix) to detect the protocol", svc.Name, sp.Port, sp.Name, portName, portName))
			}
		}
	}
	if !reached {
		errs = append(errs, fmt.Errorf("no Service port reaches its port %d", port))
	}

	// Addresses of other services must name a Service port.
	for name, v := range values {
		if name == bin.ListenFlag || !strings.HasSuffix(name, "-addr") || v == "" {
			continue
		}
		h, p, err := net.SplitHostPort(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("-%s=%q: %w", name, v, err))
			continue
		}
		pn, _ := strconv.Atoi(p)
		if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
			// A second listener of this container (e.g. -metrics-addr): its port
			// must be one the container declares.
			if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == int32(pn) }) {
				errs = append(errs, fmt.Errorf("-%s=%s listens on no port of the container", name, v))
			}
			continue
		}
		svc := s.service(h, d.Namespace)
		if svc == nil || !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Port == int32(pn) }) {
			errs = append(errs, fmt.Errorf("-%s=%s names no Service port", name, v))
		}
	}
	return errs
}

// CheckCallers returns an error for every caller an AuthorizationPolicy of a
// service misses and every principal it allows that never calls it. The callers of
// a service are the ServiceAccounts of the eventshop Deployments whose address flags
// (e.g. -catalog-addr) name it; external principals (the ingress) are left alone.
func CheckCallers(s *Set, bins map[string]Binary, external ...string) error {
	callers := map[*corev1.Service]map[string]bool{}
	for _, d := range s.Deployments {
		if d.Labels[PartOfLabel] != PartOf {
			continue
		}
		sa := fmt.Sprintf("cluster.local/ns/%s/sa/%s", d.Namespace, cmpOr(d.Spec.Template.Spec.ServiceAccountName, "default"))
		for _, c := range d.Spec.Template.Spec.Containers {
			bin, ok := bins[c.Name]
			if !ok {
				continue
			}
			values, _ := s.flagValues(d, c, bin)
			for name, v := range values {
				if name == bin.ListenFlag || !strings.HasSuffix(name, "-addr") || v == "" {
					continue
				}
				h, _, err := net.SplitHostPort(v)
				if err != nil {
					continue // CheckBinaries reports it
				}
				if svc := s.service(h, d.Namespace); svc != nil {
					if callers[svc] == nil {
						callers[svc] = map[string]bool{}
					}
					callers[svc][sa] = true
				}
			}
		}
	}
	var errs []error
	for _, ap := range s.AuthorizationPolicies {
		sel := ap.Spec.GetSelector().GetMatchLabels()
		if len(sel) == 0 || ap.Spec.GetAction().String() != "ALLOW" {
			continue
		}
		allowed := map[string]bool{}
		for _, rule := range ap.Spec.GetRules() {
			for _, from := range rule.GetFrom() {
				for _, p := range from.GetSource().GetPrincipals() {
					allowed[p] = true
				}
			}
		}
		for _, svc := range s.Services {
			if svc.Namespace != ap.Namespace || !s.selectsPods(svc, sel) {
				continue
			}
			for p := range callers[svc] {
				if !allowed[p] {
					errs = append(errs, fmt.Errorf("AuthorizationPolicy %s: %s calls Service %s but is not allowed", ap.Name, p, svc.Name))
				}
			}
			for p := range allowed {
				if !callers[svc][p] && !slices.Contains(external, p) {
					errs = append(errs, fmt.Errorf("AuthorizationPolicy %s: allows %s, which never calls Service %s", ap.Name, p, svc.Name))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// selectsPods reports whether svc selects pods of a Deployment that sel also selects.
func (s *Set) selectsPods(svc *corev1.Service, sel map[string]string) bool {
	return slices.ContainsFunc(s.Deployments, func(d *appsv1.Deployment) bool {
		l := d.Spec.Template.Labels
		return d.Namespace == svc.Namespace && len(svc.Spec.Selector) > 0 && hasLabels(l, svc.Spec.Selector) && hasLabels(l, sel)
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// resolvePort returns the number of a port given by number or by container port name.
func resolvePort(p intstr.IntOrString, c corev1.Container) int {
	if p.Type == intstr.Int {
		return int(p.IntVal)
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return -1
}

// service finds the Service a host names: "name", "name.ns", "name.ns.svc" or
// "name.ns.svc.cluster.local", relative to namespace ns.
func (s *Set) service(host, ns string) *corev1.Service {
	parts := strings.Split(host, ".")
	name := parts[0]
	switch {
	case len(parts) == 1:
	case len(parts) == 2, len(parts) == 3 && parts[2] == "svc",
		len(parts) == 5 && parts[2] == "svc" && parts[3] == "cluster" && parts[4] == "local":
		ns = parts[1]
	default:
		return nil
	}
	for _, svc := range s.Services {
		if svc.Name == name && svc.Namespace == ns {
			return svc
		}
	}
	return nil
}

func (s *Set) configMap(name, ns string) *corev1.ConfigMap {
	for _, cm := range s.ConfigMaps {
		if cm.Name == name && cm.Namespace == ns {
			return cm
		}
	}
	return nil
}

func (s *Set) subsetDefined(host, ns, subset string) bool {
	want := s.service(host, ns)
	for _, dr := range s.DestinationRules {
		if want == nil || s.service(dr.Spec.GetHost(), dr.Namespace) != want {
			continue
		}
		for _, sub := range dr.Spec.GetSubsets() {
			if sub.GetName() == subset {
				return true
			}
		}
	}
	return false
}

func (s *Set) principalExists(p string) bool {
	// cluster.local/ns/<namespace>/sa/<name>
	parts := strings.Split(p, "/")
	if len(parts) != 5 || parts[0] != "cluster.local" || parts[1] != "ns" || parts[3] != "sa" {
		return false
	}
	return slices.ContainsFunc(s.ServiceAccounts, func(sa *corev1.ServiceAccount) bool {
		return sa.Namespace == parts[2] && sa.Name == parts[4]
	})
}

func servesMesh(vs *networkingv1.VirtualService) bool {
	gws := vs.GetGateways()
	return len(gws) == 0 || slices.Contains(gws, "mesh")
}

func destinations(vs *networkingv1.VirtualService) []*networkingv1.Destination {
	var ds []*networkingv1.Destination
	for _, r := range vs.GetHttp() {
		for _, d := range r.GetRoute() {
			ds = append(ds, d.GetDestination())
		}
		if m := r.GetMirror(); m != nil {
			ds = append(ds, m)
		}
	}
	for _, r := range vs.GetTcp() {
		for _, d := range r.GetRoute() {
			ds = append(ds, d.GetDestination())
		}
	}
	for _, r := range vs.GetTls() {
		for _, d := range r.GetRoute() {
			ds = append(ds, d.GetDestination())
		}
	}
	return ds
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// CheckCanaries returns an error for every Flagger Canary whose target Deployment,
// autoscaler or metric templates are not in s, or whose port is not where the target
// listens (a containerPort of it).
func CheckCanaries(s *Set) error {
	var errs []error
	for _, c := range s.Canaries {
		var target *appsv1.Deployment
		for _, d := range s.Deployments {
			if d.Namespace == c.Namespace && d.Name == c.Spec.TargetRef.Name && c.Spec.TargetRef.Kind == "Deployment" {
				target = d
			}
		}
		if target == nil {
			errs = append(errs, fmt.Errorf("Canary %s: target %s %s does not exist", c.Name, c.Spec.TargetRef.Kind, c.Spec.TargetRef.Name))
		} else {
			port := c.Spec.Service.Port
			if c.Spec.Service.TargetPort.String() != "0" && c.Spec.Service.TargetPort.String() != "" {
				port = -1
				for _, ctr := range target.Spec.Template.Spec.Containers {
					if p := resolvePort(c.Spec.Service.TargetPort, ctr); p > 0 {
						port = int32(p)
					}
				}
			}
			if !slices.ContainsFunc(target.Spec.Template.Spec.Containers, func(ctr corev1.Container) bool {
				return slices.ContainsFunc(ctr.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == port })
			}) {
				errs = append(errs, fmt.Errorf("Canary %s: port %d (target port %s) is no container port of %s", c.Name, c.Spec.Service.Port, c.Spec.Service.TargetPort.String(), target.Name))
			}
		}
		if ref := c.Spec.AutoscalerRef; ref != nil && !slices.ContainsFunc(s.HPAs, func(h *autoscalingv2.HorizontalPodAutoscaler) bool {
			return h.Namespace == c.Namespace && h.Name == ref.Name && h.Spec.ScaleTargetRef.Name == c.Spec.TargetRef.Name
		}) {
			errs = append(errs, fmt.Errorf("Canary %s: autoscaler %s does not exist or does not scale %s", c.Name, ref.Name, c.Spec.TargetRef.Name))
		}
		if c.Spec.Analysis == nil {
			errs = append(errs, fmt.Errorf("Canary %s: no analysis, so nothing can roll it back", c.Name))
			continue
		}
		for _, m := range c.Spec.Analysis.Metrics {
			ref := m.TemplateRef
			if ref == nil {
				continue // a built-in metric of the provider
			}
			ns := cmpOr(ref.Namespace, c.Namespace)
			if !slices.ContainsFunc(s.MetricTemplates, func(t *flaggerv1.MetricTemplate) bool { return t.Namespace == ns && t.Name == ref.Name }) {
				errs = append(errs, fmt.Errorf("Canary %s: metric %s uses template %s/%s, which does not exist", c.Name, m.Name, ns, ref.Name))
			}
		}
	}
	return errors.Join(errs...)
}

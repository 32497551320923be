// Package manifest decodes eventshop's Kubernetes, Istio and Flagger manifests strictly
// into their typed APIs and cross-checks them: against each other (hosts, subsets,
// weights, principals) and against what the service binaries really accept.
package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	flaggerv1 "github.com/fluxcd/flagger/pkg/apis/flagger/v1beta1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/api/networking/v1"
	securityv1 "istio.io/api/security/v1"
	telemetryv1 "istio.io/api/telemetry/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// ErrUnknownKind is returned (wrapped) for a document whose apiVersion and kind
// this package has no typed API for: an unchecked document is a rejected one.
var ErrUnknownKind = errors.New("no typed API for this apiVersion/kind")

// Istio is an Istio resource: Kubernetes metadata around a protobuf spec.
type Istio[T proto.Message] struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	Spec T
}

// Set holds every decoded object of one rendering, by kind.
type Set struct {
	Namespaces      []*corev1.Namespace
	ServiceAccounts []*corev1.ServiceAccount
	ConfigMaps      []*corev1.ConfigMap
	Secrets         []*corev1.Secret
	Services        []*corev1.Service
	PVCs            []*corev1.PersistentVolumeClaim
	Deployments     []*appsv1.Deployment
	StatefulSets    []*appsv1.StatefulSet
	Jobs            []*batchv1.Job
	PDBs            []*policyv1.PodDisruptionBudget
	HPAs            []*autoscalingv2.HorizontalPodAutoscaler
	NetworkPolicies []*netv1.NetworkPolicy

	Gateways               []*Istio[*networkingv1.Gateway]
	VirtualServices        []*Istio[*networkingv1.VirtualService]
	DestinationRules       []*Istio[*networkingv1.DestinationRule]
	PeerAuthentications    []*Istio[*securityv1.PeerAuthentication]
	AuthorizationPolicies  []*Istio[*securityv1.AuthorizationPolicy]
	RequestAuthentications []*Istio[*securityv1.RequestAuthentication]
	Telemetries            []*Istio[*telemetryv1.Telemetry]

	Canaries        []*flaggerv1.Canary
	MetricTemplates []*flaggerv1.MetricTemplate
}

// Merge returns a Set with the objects of s followed by those of o; neither is changed.
func (s *Set) Merge(o *Set) *Set {
	return &Set{
		Namespaces:             append(append([]*corev1.Namespace(nil), s.Namespaces...), o.Namespaces...),
		ServiceAccounts:        append(append([]*corev1.ServiceAccount(nil), s.ServiceAccounts...), o.ServiceAccounts...),
		ConfigMaps:             append(append([]*corev1.ConfigMap(nil), s.ConfigMaps...), o.ConfigMaps...),
		Secrets:                append(append([]*corev1.Secret(nil), s.Secrets...), o.Secrets...),
		Services:               append(append([]*corev1.Service(nil), s.Services...), o.Services...),
		PVCs:                   append(append([]*corev1.PersistentVolumeClaim(nil), s.PVCs...), o.PVCs...),
		Deployments:            append(append([]*appsv1.Deployment(nil), s.Deployments...), o.Deployments...),
		StatefulSets:           append(append([]*appsv1.StatefulSet(nil), s.StatefulSets...), o.StatefulSets...),
		Jobs:                   append(append([]*batchv1.Job(nil), s.Jobs...), o.Jobs...),
		PDBs:                   append(append([]*policyv1.PodDisruptionBudget(nil), s.PDBs...), o.PDBs...),
		HPAs:                   append(append([]*autoscalingv2.HorizontalPodAutoscaler(nil), s.HPAs...), o.HPAs...),
		NetworkPolicies:        append(append([]*netv1.NetworkPolicy(nil), s.NetworkPolicies...), o.NetworkPolicies...),
		Gateways:               append(append([]*Istio[*networkingv1.Gateway](nil), s.Gateways...), o.Gateways...),
		VirtualServices:        append(append([]*Istio[*networkingv1.VirtualService](nil), s.VirtualServices...), o.VirtualServices...),
		DestinationRules:       append(append([]*Istio[*networkingv1.DestinationRule](nil), s.DestinationRules...), o.DestinationRules...),
		PeerAuthentications:    append(append([]*Istio[*securityv1.PeerAuthentication](nil), s.PeerAuthentications...), o.PeerAuthentications...),
		AuthorizationPolicies:  append(append([]*Istio[*securityv1.AuthorizationPolicy](nil), s.AuthorizationPolicies...), o.AuthorizationPolicies...),
		RequestAuthentications: append(append([]*Istio[*securityv1.RequestAuthentication](nil), s.RequestAuthentications...), o.RequestAuthentications...),
		Telemetries:            append(append([]*Istio[*telemetryv1.Telemetry](nil), s.Telemetries...), o.Telemetries...),
		Canaries:               append(append([]*flaggerv1.Canary(nil), s.Canaries...), o.Canaries...),
		MetricTemplates:        append(append([]*flaggerv1.MetricTemplate(nil), s.MetricTemplates...), o.MetricTemplates...),
	}
}

// Decode splits data into YAML documents and decodes each strictly into its typed
// API: Kubernetes kinds into k8s.io/api structs, Flagger kinds into Flagger's structs
// (unknown and duplicate fields rejected in both), and Istio specs through protojson
// into istio.io/api messages, which rejects unknown fields inside the spec too.
//
// Decode returns an error naming the document (by position, kind and name) for
// malformed YAML, an unknown or duplicate field, a wrong value type, or a kind
// without a typed API here (ErrUnknownKind); all such errors are joined.
func Decode(data []byte) (*Set, error) {
	s := &Set{}
	r := kyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var errs []error
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		if err := s.add(doc); err != nil {
			errs = append(errs, fmt.Errorf("document %d (%s): %w", i, describe(doc), err))
		}
	}
	return s, errors.Join(errs...)
}

func (s *Set) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	switch tm.APIVersion + "/" + tm.Kind {
	case "v1/Namespace":
		return strictInto(doc, &s.Namespaces)
	case "v1/ServiceAccount":
		return strictInto(doc, &s.ServiceAccounts)
	case "v1/ConfigMap":
		return strictInto(doc, &s.ConfigMaps)
	case "v1/Secret":
		return strictInto(doc, &s.Secrets)
	case "v1/Service":
		return strictInto(doc, &s.Services)
	case "v1/PersistentVolumeClaim":
		return strictInto(doc, &s.PVCs)
	case "apps/v1/Deployment":
		return strictInto(doc, &s.Deployments)
	case "apps/v1/StatefulSet":
		return strictInto(doc, &s.StatefulSets)
	case "batch/v1/Job":
		return strictInto(doc, &s.Jobs)
	case "policy/v1/PodDisruptionBudget":
		return strictInto(doc, &s.PDBs)
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return strictInto(doc, &s.HPAs)
	case "networking.k8s.io/v1/NetworkPolicy":
		return strictInto(doc, &s.NetworkPolicies)
	case "networking.istio.io/v1/Gateway":
		return istioInto(doc, &s.Gateways)
	case "networking.istio.io/v1/VirtualService":
		return istioInto(doc, &s.VirtualServices)
	case "networking.istio.io/v1/DestinationRule":
		return istioInto(doc, &s.DestinationRules)
	case "security.istio.io/v1/PeerAuthentication":
		return istioInto(doc, &s.PeerAuthentications)
	case "security.istio.io/v1/AuthorizationPolicy":
		return istioInto(doc, &s.AuthorizationPolicies)
	case "security.istio.io/v1/RequestAuthentication":
		return istioInto(doc, &s.RequestAuthentications)
	case "telemetry.istio.io/v1/Telemetry":
		return istioInto(doc, &s.Telemetries)
	case "flagger.app/v1beta1/Canary":
		return strictInto(doc, &s.Canaries)
	case "flagger.app/v1beta1/MetricTemplate":
		return strictInto(doc, &s.MetricTemplates)
	}
	return fmt.Errorf("apiVersion %q kind %q: %w", tm.APIVersion, tm.Kind, ErrUnknownKind)
}

// strictInto decodes doc into a new T and appends it to *list.
func strictInto[T any](doc []byte, list *[]*T) error {
	v := new(T)
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// istioEnvelope is an Istio resource before its spec is decoded; status is left to
// the control plane and never belongs in a manifest.
type istioEnvelope struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              jsonRaw `json:"spec"`
}

// jsonRaw keeps the spec's JSON for protojson.
type jsonRaw []byte

func (j *jsonRaw) UnmarshalJSON(b []byte) error { *j = append((*j)[:0], b...); return nil }

func istioInto[T proto.Message](doc []byte, list *[]*Istio[T]) error {
	var env istioEnvelope
	if err := yaml.UnmarshalStrict(doc, &env); err != nil {
		return err
	}
	if len(env.Spec) == 0 {
		env.Spec = jsonRaw("{}")
	}
	var zero T
	spec := zero.ProtoReflect().New().Interface().(T)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(env.Spec, spec); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	*list = append(*list, &Istio[T]{TypeMeta: env.TypeMeta, ObjectMeta: env.ObjectMeta, Spec: spec})
	return nil
}

func describe(doc []byte) string {
	var m struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if yaml.Unmarshal(doc, &m) != nil || m.Kind == "" {
		return "unnamed"
	}
	return m.Kind + " " + m.Metadata.Name
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") || t == "---" {
			continue
		}
		out = append(out, line...)
		out = append(out, '\n')
	}
	return out
}

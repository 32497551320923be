package manifest

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/conf"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
)

// NATS ports: clients and monitoring.
const (
	natsClientPort  = 4222
	natsMonitorPort = 8222
)

// CheckNATS returns an error for every way the shop's NATS could be reached without
// trust: a NATS StatefulSet (label app=nats) whose configuration lets clients or
// routes in without TLS, admits clients without users or takes its users or keys
// from anything but a Secret; a Service exposing the monitor port; no NetworkPolicy
// limiting who reaches the nodes, or one admitting every pod or the monitor port;
// and an eventshop Deployment that connects to NATS (SHOP_NATS_URL) without TLS,
// without its own identity and CA from Secrets, or whose pods the policy does not
// admit.
func CheckNATS(s *Set) error {
	i := slices.IndexFunc(s.StatefulSets, func(st *appsv1.StatefulSet) bool { return st.Spec.Template.Labels["app"] == "nats" })
	if i < 0 {
		return errors.New("no NATS StatefulSet (label app=nats)")
	}
	st := s.StatefulSets[i]
	where := "StatefulSet " + st.Name
	pod := st.Spec.Template.Spec
	if len(pod.Containers) == 0 {
		return fmt.Errorf("%s: no container", where)
	}
	c := pod.Containers[0]
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	cfgFile := argAfter(c.Args, "--config")
	text, err := s.mountedConfig(st.Namespace, pod, c, cfgFile)
	if err != nil {
		fail("%s: %v", where, err)
	} else {
		for _, e := range s.natsConfigErrors(pod, c, cfgFile, text) {
			fail("%s: %v", where, e)
		}
	}

	for _, svc := range s.Services {
		if svc.Namespace != st.Namespace || !hasLabels(st.Spec.Template.Labels, svc.Spec.Selector) {
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.Port == natsMonitorPort || resolvePort(p.TargetPort, c) == natsMonitorPort {
				fail("Service %s exposes the NATS monitor port (%s)", svc.Name, p.Name)
			}
		}
	}

	policy := s.natsPolicy(st)
	if policy == nil {
		fail("no NetworkPolicy limits who reaches the NATS pods")
	} else {
		for _, r := range policy.Spec.Ingress {
			if len(r.From) == 0 {
				fail("NetworkPolicy %s: a rule admits every pod", policy.Name)
			}
			for _, p := range r.Ports {
				if p.Port == nil || p.Port.IntValue() == natsMonitorPort || p.Port.String() == "monitor" {
					fail("NetworkPolicy %s: admits pods to the monitor port", policy.Name)
				}
			}
			if len(r.Ports) == 0 {
				fail("NetworkPolicy %s: a rule admits every port, the monitor port too", policy.Name)
			}
		}
	}

	for _, d := range s.Deployments {
		if d.Labels[PartOfLabel] != PartOf {
			continue
		}
		for _, ct := range d.Spec.Template.Spec.Containers {
			url, ok := s.envValue(d.Namespace, ct, "SHOP_NATS_URL")
			if !ok {
				continue
			}
			where := fmt.Sprintf("Deployment %s container %s", d.Name, ct.Name)
			if !strings.HasPrefix(url, "tls://") {
				fail("%s: connects to NATS at %q, not tls://", where, url)
			}
			for _, env := range []string{"SHOP_NATS_NKEY", "SHOP_NATS_CA"} {
				file, ok := s.envValue(d.Namespace, ct, env)
				if !ok || !inSecret(d.Spec.Template.Spec, ct, file) {
					fail("%s: %s is not a file from a Secret", where, env)
				}
			}
			if policy != nil && !admits(policy, d.Namespace, d.Spec.Template.Labels, natsClientPort) {
				fail("%s: NetworkPolicy %s does not admit its pods to NATS", where, policy.Name)
			}
		}
	}
	return errors.Join(errs...)
}

var (
	includeLine = regexp.MustCompile(`(?m)^\s*include\s+(\S+)\s*$`)
	envVar      = regexp.MustCompile(`\$[A-Za-z_][A-Za-z0-9_]*`)
)

// natsConfigErrors checks the server configuration text, found at cfgFile in c.
func (s *Set) natsConfigErrors(pod corev1.PodSpec, c corev1.Container, cfgFile, text string) []error {
	var errs []error
	var includes []string
	for _, m := range includeLine.FindAllStringSubmatch(text, -1) {
		includes = append(includes, strings.Trim(m[1], `"'`))
	}
	// Parse what the file itself says: variables come from the pod, includes from
	// other volumes, checked below.
	body := envVar.ReplaceAllString(includeLine.ReplaceAllString(text, ""), "x")
	cfg, err := conf.Parse(body)
	if err != nil {
		return []error{fmt.Errorf("configuration: %v", err)}
	}
	checkTLS := func(what string, v any, needVerify bool) {
		m, _ := v.(map[string]any)
		cert, _ := m["cert_file"].(string)
		key, _ := m["key_file"].(string)
		if cert == "" || key == "" {
			errs = append(errs, fmt.Errorf("%s without TLS", what))
			return
		}
		for _, f := range []string{cert, key} {
			if !inSecret(pod, c, f) {
				errs = append(errs, fmt.Errorf("%s: TLS file %s is not from a Secret", what, f))
			}
		}
		if verify, _ := m["verify"].(bool); needVerify && !verify {
			errs = append(errs, fmt.Errorf("%s: TLS does not verify the peer's certificate", what))
		}
	}
	checkTLS("client connections", cfg["tls"], false)
	if cluster, ok := cfg["cluster"].(map[string]any); ok {
		checkTLS("cluster routes", cluster["tls"], true)
	}
	if _, ok := cfg["authorization"]; ok {
		errs = append(errs, errors.New("users are in the ConfigMap; they belong in a Secret"))
	}
	if _, ok := cfg["accounts"]; ok {
		errs = append(errs, errors.New("accounts are in the ConfigMap; they belong in a Secret"))
	}
	users := false
	for _, inc := range includes {
		if inSecret(pod, c, path.Join(path.Dir(cfgFile), inc)) {
			users = true
		}
	}
	if !users {
		errs = append(errs, errors.New("admits any client: no users included from a Secret"))
	}
	return errs
}

// mountedConfig returns the text of file in c, from the ConfigMap volume mounted
// over it.
func (s *Set) mountedConfig(ns string, pod corev1.PodSpec, c corev1.Container, file string) (string, error) {
	if file == "" {
		return "", errors.New("no --config argument")
	}
	vol, rel := mountedVolume(pod, c, file)
	if vol == nil || vol.ConfigMap == nil {
		return "", fmt.Errorf("configuration %s is not from a ConfigMap", file)
	}
	cm := s.configMap(vol.ConfigMap.Name, ns)
	if cm == nil {
		return "", fmt.Errorf("ConfigMap %s not found", vol.ConfigMap.Name)
	}
	text, ok := cm.Data[rel]
	if !ok {
		return "", fmt.Errorf("ConfigMap %s has no key %s", cm.Name, rel)
	}
	return text, nil
}

// mountedVolume returns the volume of pod mounted in c at or above file, and
// file's path inside it.
func mountedVolume(pod corev1.PodSpec, c corev1.Container, file string) (*corev1.Volume, string) {
	for _, m := range c.VolumeMounts {
		dir := strings.TrimSuffix(m.MountPath, "/") + "/"
		if !strings.HasPrefix(file, dir) {
			continue
		}
		for i := range pod.Volumes {
			if pod.Volumes[i].Name == m.Name {
				return &pod.Volumes[i], strings.TrimPrefix(file, dir)
			}
		}
	}
	return nil, ""
}

func inSecret(pod corev1.PodSpec, c corev1.Container, file string) bool {
	vol, _ := mountedVolume(pod, c, file)
	return vol != nil && vol.Secret != nil
}

// natsPolicy returns the Ingress NetworkPolicy selecting st's pods, if any.
func (s *Set) natsPolicy(st *appsv1.StatefulSet) *netv1.NetworkPolicy {
	for _, p := range s.NetworkPolicies {
		if p.Namespace == st.Namespace && hasLabels(st.Spec.Template.Labels, p.Spec.PodSelector.MatchLabels) &&
			slices.Contains(p.Spec.PolicyTypes, netv1.PolicyTypeIngress) {
			return p
		}
	}
	return nil
}

// admits reports whether p lets pods with labels in namespace ns reach port.
func admits(p *netv1.NetworkPolicy, ns string, labels map[string]string, port int) bool {
	for _, r := range p.Spec.Ingress {
		if !slices.ContainsFunc(r.Ports, func(rp netv1.NetworkPolicyPort) bool { return rp.Port != nil && rp.Port.IntValue() == port }) {
			continue
		}
		for _, peer := range r.From {
			nsOK := peer.NamespaceSelector == nil && ns == p.Namespace ||
				peer.NamespaceSelector != nil && peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == ns
			podOK := peer.PodSelector == nil || hasLabels(labels, peer.PodSelector.MatchLabels)
			if nsOK && podOK {
				return true
			}
		}
	}
	return false
}

// envValue returns the value of env in c: literal, or from a ConfigMap key.
func (s *Set) envValue(ns string, c corev1.Container, env string) (string, bool) {
	for _, e := range c.Env {
		if e.Name != env {
			continue
		}
		if e.ValueFrom == nil {
			return e.Value, true
		}
		if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil {
			if cm := s.configMap(ref.Name, ns); cm != nil {
				v, ok := cm.Data[ref.Key]
				return v, ok
			}
		}
		return "", true
	}
	return "", false
}

func argAfter(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

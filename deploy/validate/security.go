package main

import (
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The security model of the manifests (deploy/README.md, "Security"):
// secrets and certificates come from Secrets mounted read-only; members
// bind 0.0.0.0 only with authentication, and their cluster port beyond
// loopback only with mutual TLS; the admin listener (/metrics,
// pprof; no authentication) is in no Service and only the monitoring
// namespace may reach it; only gateways (and labelled clients) reach the
// members' gRPC port and only members their cluster port.

// monitoringNamespace is the only namespace the admin port admits.
const monitoringNamespace = "monitoring"

// fileFlags are hookd flags that name a file; in a pod each must lie in a
// Secret mounted read-only, and name a key of that Secret.
var fileFlags = []string{"token-file", "tls-cert", "tls-key", "grpc-client-ca", "ingest-ca", "ingest-cert", "ingest-key",
	"cluster-tls-cert", "cluster-tls-key", "cluster-tls-ca"}

func containerArgs(c *corev1.Container) []string { return append(slices.Clone(c.Command), c.Args...) }

// flagOrEnv is --name's value from the arguments, else from its HOOKD_*
// twin's literal value in env.
func flagOrEnv(c *corev1.Container, name string) (string, bool) {
	if v, ok := argValue(containerArgs(c), name); ok {
		return v, true
	}
	env := "HOOKD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	for _, e := range c.Env {
		if e.Name == env {
			return e.Value, true // a value from a Secret counts as set
		}
	}
	return "", false
}

// checkFileFlags: every file flag names a key of a Secret mounted read-only.
func (v *k8sCheck) checkFileFlags(cid string, spec *corev1.PodSpec, c *corev1.Container) {
	p := &v.p
	for _, f := range fileFlags {
		file, ok := argValue(containerArgs(c), f)
		if !ok {
			continue
		}
		v.n++
		var mount *corev1.VolumeMount
		for i := range c.VolumeMounts {
			m := &c.VolumeMounts[i]
			if strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
				mount = m
			}
		}
		if mount == nil {
			p.errorf("%s: --%s=%s is in no volume mount", cid, f, file)
			continue
		}
		if !mount.ReadOnly {
			p.errorf("%s: --%s=%s: mount %s must be readOnly", cid, f, file, mount.MountPath)
		}
		vol := volume(spec, mount.Name)
		if vol == nil || vol.Secret == nil {
			p.errorf("%s: --%s=%s: volume %q is not a Secret volume", cid, f, file, mount.Name)
			continue
		}
		rel := strings.TrimPrefix(file, strings.TrimSuffix(mount.MountPath, "/")+"/")
		key := rel
		if len(vol.Secret.Items) > 0 {
			key = ""
			for _, it := range vol.Secret.Items {
				if path.Clean(it.Path) == rel {
					key = it.Key
				}
			}
		}
		if keys := v.secrets[vol.Secret.SecretName]; keys != nil && !keys[key] {
			p.errorf("%s: --%s=%s: Secret %q has no key for %q (secret.example.yaml)", cid, f, file, vol.Secret.SecretName, rel)
		}
	}
}

func volume(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// checkSecretVolumes: Secret volumes name documented Secrets and keys, and
// are mounted read-only.
func (v *k8sCheck) checkSecretVolumes(id string, spec *corev1.PodSpec) {
	p := &v.p
	for _, vol := range spec.Volumes {
		if vol.Secret == nil {
			continue
		}
		v.n++
		keys := v.secrets[vol.Secret.SecretName]
		if keys == nil {
			p.errorf("%s: volume %s mounts Secret %q, which secret.example.yaml does not document", id, vol.Name, vol.Secret.SecretName)
			continue
		}
		for _, it := range vol.Secret.Items {
			if !keys[it.Key] {
				p.errorf("%s: volume %s: Secret %q has no key %q", id, vol.Name, vol.Secret.SecretName, it.Key)
			}
		}
		for _, c := range spec.Containers {
			for _, m := range c.VolumeMounts {
				if m.Name == vol.Name && !m.ReadOnly {
					p.errorf("%s container %s: Secret volume %s must be mounted readOnly", id, c.Name, vol.Name)
				}
			}
		}
	}
}

func addrPort(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(port)
	return n
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && loopbackHost(host)
}

// loopbackHost says whether host (no port) is reachable only from its own
// machine; "" (a value only known at run time, such as a pod IP) is not.
func loopbackHost(host string) bool {
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// clusterTLSFlags turn on mutual TLS between members on the cluster port,
// which hookd requires (or --insecure) for a non-loopback --cluster-host:
// protoactor's remote checks no bearer token.
var clusterTLSFlags = []string{"cluster-tls-cert", "cluster-tls-key", "cluster-tls-ca"}

// clusterHostLoopback says whether a member's --cluster-host (default
// 127.0.0.1) is loopback; one from valueFrom (the pod IP) is not.
func clusterHostLoopback(c *corev1.Container) bool {
	host, ok := flagOrEnv(c, "cluster-host")
	return !ok || loopbackHost(host)
}

// checkAdmin: every hookd container sets --admin-addr, declares it as the
// container port "admin", apart from the public ports; no Service exposes
// it; the Prometheus annotation points at it.
func (v *k8sCheck) checkAdmin() {
	p := &v.p
	adminPorts := map[int32]bool{}
	adminNames := map[string]bool{}
	for _, d := range v.deployments {
		for i := range d.Spec.Template.Spec.Containers {
			c := &d.Spec.Template.Spec.Containers[i]
			cid := "Deployment/" + d.Name + " container " + c.Name
			v.n++
			addr, ok := flagOrEnv(c, "admin-addr")
			port := addrPort(addr)
			if !ok || port == 0 {
				p.errorf("%s: needs --admin-addr=<host>:<port> (the admin listener: /metrics, pprof), got %q", cid, addr)
				continue
			}
			adminPorts[int32(port)] = true
			var declared *corev1.ContainerPort
			for j := range c.Ports {
				if int(c.Ports[j].ContainerPort) == port {
					declared = &c.Ports[j]
				}
			}
			if declared == nil || declared.Name != "admin" {
				p.errorf("%s: --admin-addr port %d must be declared as the container port named \"admin\"", cid, port)
			} else {
				adminNames[declared.Name] = true
			}
			for _, public := range []string{"http-addr", "grpc-addr"} {
				if a, ok := flagOrEnv(c, public); ok && addrPort(a) == port {
					p.errorf("%s: --admin-addr shares port %d with --%s", cid, port, public)
				}
			}
			if ann, ok := d.Spec.Template.Annotations["prometheus.io/port"]; ok && ann != strconv.Itoa(port) {
				p.errorf("%s: prometheus.io/port %q is not the admin port %d", cid, ann, port)
			}
			if ann, ok := d.Spec.Template.Annotations["prometheus.io/path"]; ok && ann != "/metrics" {
				p.errorf("%s: prometheus.io/path %q, want /metrics", cid, ann)
			}
		}
	}
	for _, s := range v.services {
		for _, sp := range s.Spec.Ports {
			v.n++
			if adminPorts[sp.Port] || adminPorts[sp.TargetPort.IntVal] || adminNames[sp.TargetPort.StrVal] {
				p.errorf("Service/%s: port %s (%d → %s) exposes the admin listener, which has no authentication; no Service may", s.Name, sp.Name, sp.Port, sp.TargetPort.String())
			}
		}
	}
}

// checkAuth: a member binding gRPC beyond loopback authenticates its
// callers (tokens or mTLS), one binding the cluster port beyond loopback
// its peers (cluster TLS), and gateways bring what members ask for;
// nothing runs with --insecure.
func (v *k8sCheck) checkAuth() {
	p := &v.p
	var memberTokens, memberMTLS bool
	for _, d := range v.deployments {
		for i := range d.Spec.Template.Spec.Containers {
			c := &d.Spec.Template.Spec.Containers[i]
			cid := "Deployment/" + d.Name + " container " + c.Name
			v.n++
			if _, ok := flagOrEnv(c, "insecure"); ok {
				p.errorf("%s: --insecure has no place in these manifests: configure tokens or mTLS", cid)
			}
			if roles, _ := argValue(containerArgs(c), "roles"); !strings.Contains(roles, "member") {
				continue
			}
			_, tokenFile := flagOrEnv(c, "token-file")
			_, tokens := flagOrEnv(c, "tokens")
			_, clientCA := flagOrEnv(c, "grpc-client-ca")
			memberTokens, memberMTLS = tokenFile || tokens, clientCA
			addr, _ := flagOrEnv(c, "grpc-addr")
			v.n++
			if !loopback(addr) && !tokenFile && !tokens && !clientCA {
				p.errorf("%s: --grpc-addr=%s is not loopback, so it needs --token-file or --grpc-client-ca (hookd refuses to start without)", cid, addr)
			}
			// The actor port: only cluster TLS authenticates it. As
			// arguments, so that checkFileFlags checks their Secret mounts.
			v.n++
			if !clusterHostLoopback(c) {
				for _, f := range clusterTLSFlags {
					if file, ok := argValue(containerArgs(c), f); !ok || file == "" {
						p.errorf("%s: --cluster-host is not loopback, so it needs --%s=<a file in a read-only Secret mount> (mutual TLS between members; hookd refuses to start without)", cid, f)
					}
				}
			}
		}
	}
	for _, d := range v.deployments {
		for i := range d.Spec.Template.Spec.Containers {
			c := &d.Spec.Template.Spec.Containers[i]
			if roles, _ := argValue(containerArgs(c), "roles"); roles != "gateway" {
				continue
			}
			cid := "Deployment/" + d.Name + " container " + c.Name
			v.n++
			if _, ok := flagOrEnv(c, "ingest-token"); memberTokens && !ok {
				p.errorf("%s: members require tokens: set --ingest-token (HOOKD_INGEST_TOKEN from a Secret)", cid)
			}
			_, cert := flagOrEnv(c, "ingest-cert")
			_, key := flagOrEnv(c, "ingest-key")
			_, ca := flagOrEnv(c, "ingest-ca")
			if memberMTLS && !(cert && key && ca) {
				p.errorf("%s: members require client certificates (--grpc-client-ca): set --ingest-cert, --ingest-key and --ingest-ca", cid)
			}
		}
	}
}

// peerKind describes one NetworkPolicy peer for the checks below.
type peerKind struct {
	anyone    bool   // an ingress rule without from
	ipBlock   bool   // any ipBlock
	namespace string // kubernetes.io/metadata.name of a namespaceSelector, "" for none
	otherNS   bool   // a namespaceSelector on other labels
	pods      labels.Selector
	every     bool // an empty pod or namespace selector: every pod (of the namespace, or of the cluster)
}

// allowed lists, for the pods of template t and one of their container
// ports, the peers the namespace's NetworkPolicies admit. selected says
// whether any policy with Ingress selects the pods (else everything is
// open).
func (v *k8sCheck) allowed(t *corev1.PodTemplateSpec, port corev1.ContainerPort) (peers []peerKind, selected bool) {
	for _, np := range v.policies {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || !sel.Matches(labels.Set(t.Labels)) {
			continue
		}
		ingress := len(np.Spec.PolicyTypes) == 0 || slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
		if !ingress {
			continue
		}
		selected = true
		for _, rule := range np.Spec.Ingress {
			if !coversPort(rule.Ports, port) {
				continue
			}
			if len(rule.From) == 0 {
				peers = append(peers, peerKind{anyone: true})
				continue
			}
			for _, f := range rule.From {
				k := peerKind{ipBlock: f.IPBlock != nil}
				empty := func(ls *metav1.LabelSelector) bool {
					return ls != nil && len(ls.MatchLabels) == 0 && len(ls.MatchExpressions) == 0
				}
				k.every = empty(f.NamespaceSelector) || empty(f.PodSelector)
				if f.NamespaceSelector != nil {
					if name := f.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]; name != "" && len(f.NamespaceSelector.MatchLabels) == 1 && len(f.NamespaceSelector.MatchExpressions) == 0 {
						k.namespace = name
					} else {
						k.otherNS = true
					}
				}
				if f.PodSelector != nil {
					k.pods, _ = metav1.LabelSelectorAsSelector(f.PodSelector)
				}
				peers = append(peers, k)
			}
		}
	}
	return peers, selected
}

func coversPort(ports []networkingv1.NetworkPolicyPort, cp corev1.ContainerPort) bool {
	if len(ports) == 0 {
		return true
	}
	for _, pp := range ports {
		if pp.Protocol != nil && *pp.Protocol != corev1.ProtocolTCP {
			continue
		}
		switch {
		case pp.Port == nil:
			return true
		case pp.Port.StrVal != "":
			if pp.Port.StrVal == cp.Name {
				return true
			}
		case pp.EndPort != nil:
			if cp.ContainerPort >= pp.Port.IntVal && cp.ContainerPort <= *pp.EndPort {
				return true
			}
		case pp.Port.IntVal == cp.ContainerPort:
			return true
		}
	}
	return false
}

// checkPolicies: who may reach the members' and gateways' ports.
func (v *k8sCheck) checkPolicies() {
	p := &v.p
	var member, gateway *appsv1.Deployment
	for _, d := range v.deployments {
		switch d.Name {
		case "hookd-member":
			member = d
		case "hookd-gateway":
			gateway = d
		}
	}
	if member == nil || gateway == nil {
		return // checkHookd said so
	}
	podsOf := func(sel labels.Selector, d *appsv1.Deployment) bool {
		return sel != nil && !sel.Empty() && sel.Matches(labels.Set(d.Spec.Template.Labels))
	}
	for _, d := range []*appsv1.Deployment{member, gateway} {
		id := "Deployment/" + d.Name
		t := &d.Spec.Template
		for _, cp := range t.Spec.Containers[0].Ports {
			v.n++
			peers, selected := v.allowed(t, cp)
			where := fmt.Sprintf("%s port %s (%d)", id, cp.Name, cp.ContainerPort)
			if !selected {
				p.errorf("%s: no NetworkPolicy selects these pods: every port is open to the whole cluster", id)
				break
			}
			for _, k := range peers {
				switch {
				case k.anyone && !(d == gateway && cp.Name == "http"):
					p.errorf("%s: a NetworkPolicy admits anyone; only the gateways' webhook port may be open", where)
				case k.every && !(d == gateway && cp.Name == "http"):
					p.errorf("%s: a NetworkPolicy admits every pod (an empty podSelector or namespaceSelector); name the clients", where)
				case k.ipBlock:
					p.errorf("%s: a NetworkPolicy admits an ipBlock; name pods or namespaces instead", where)
				case cp.Name == "admin" && k.namespace != monitoringNamespace:
					p.errorf("%s: the admin listener (no authentication) may admit only the namespace %q", where, monitoringNamespace)
				case d == member && cp.Name == "cluster" && (k.namespace != "" || k.otherNS || !podsOf(k.pods, member)):
					p.errorf("%s: only other members may reach the cluster port", where)
				case d == member && cp.Name == "http":
					p.errorf("%s: a member's HTTP port serves only the kubelet's probes; admit nobody", where)
				}
			}
			switch {
			case d == member && cp.Name == "grpc":
				if !slices.ContainsFunc(peers, func(k peerKind) bool { return k.namespace == "" && !k.otherNS && podsOf(k.pods, gateway) }) {
					p.errorf("%s: the gateways cannot reach it (add a podSelector for their pods)", where)
				}
			case d == member && cp.Name == "cluster":
				if len(peers) == 0 {
					p.errorf("%s: the other members cannot reach it", where)
				}
			case d == gateway && cp.Name == "http":
				if len(peers) == 0 {
					p.errorf("%s: nothing may reach the webhook port", where)
				}
			}
		}
	}
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// The Secret with the database URL and the webhook secret; secret.example.yaml
// defines it and the other Secrets (tokens, certificates) the manifests read.
const secretName = "hookd"

// cmdK8s decodes every object of the rendered (kustomize build) manifests
// into its typed k8s.io/api struct, rejecting unknown and duplicate fields,
// then checks what a schema cannot: that the objects fit together
// (selectors, Services, ports, RBAC, Secret keys, the gateways' ingest
// address) and that they run hookd the way the cluster design needs.
func cmdK8s(args []string) error {
	fs := flag.NewFlagSet("k8s", flag.ContinueOnError)
	dir := fs.String("dir", "deploy/k8s", "directory with kustomization.yaml and secret.example.yaml")
	source := fs.String("source", "cmd/hookd", "hookd's main package, for its flag names")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want one rendered manifest file")
	}
	known, err := hookdFlags(*source)
	if err != nil {
		return err
	}
	if len(known) == 0 {
		return fmt.Errorf("no flags found in %s", *source)
	}
	v := &k8sCheck{known: known, secrets: map[string]map[string]bool{}, secretTypes: map[string]corev1.SecretType{}}
	p := &v.p

	// kustomization.yaml: every manifest listed, the example Secret not.
	v.checkKustomization(*dir)

	// The example Secret defines the keys the workloads may reference.
	secretObjs, err := decodeFile(filepath.Join(*dir, "secret.example.yaml"), p)
	if err != nil {
		return err
	}
	for _, o := range secretObjs {
		s, ok := o.(*corev1.Secret)
		if !ok {
			p.errorf("secret.example.yaml: want only Secrets, got %T", o)
			continue
		}
		keys := map[string]bool{}
		for k := range s.StringData {
			keys[k] = true
		}
		for k := range s.Data {
			keys[k] = true
		}
		v.secrets[s.Name], v.secretTypes[s.Name] = keys, s.Type
		v.n++
		// cert-manager's Certificate Secrets: the type and keys hookd reads.
		if s.Type == corev1.SecretTypeTLS && !(keys["tls.crt"] && keys["tls.key"] && keys["ca.crt"]) {
			p.errorf("secret.example.yaml: Secret/%s: a kubernetes.io/tls Secret needs tls.crt, tls.key and ca.crt (cert-manager writes all three)", s.Name)
		}
	}
	v.n++
	if v.secrets[secretName] == nil {
		p.errorf("secret.example.yaml: no Secret %q", secretName)
	}

	objs, err := decodeFile(fs.Arg(0), p)
	if err != nil {
		return err
	}
	for _, o := range objs {
		v.add(o)
	}
	v.checkAll()
	return p.report(fmt.Sprintf("%d Kubernetes objects", len(objs)), v.n)
}

type k8sCheck struct {
	p           problems
	n           int
	known       map[string]bool
	secrets     map[string]map[string]bool // secret.example.yaml: name → keys
	secretTypes map[string]corev1.SecretType

	namespaces   []*corev1.Namespace
	accounts     []*corev1.ServiceAccount
	roles        []*rbacv1.Role
	bindings     []*rbacv1.RoleBinding
	deployments  []*appsv1.Deployment
	services     []*corev1.Service
	pdbs         []*policyv1.PodDisruptionBudget
	jobs         []*batchv1.Job
	policies     []*networkingv1.NetworkPolicy
	namespaced   []metav1.Object
	namespaceFor string
}

// decodeFile splits a multi-document YAML file and decodes each document
// strictly into its typed struct.
func decodeFile(path string, p *problems) ([]any, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufioReader(raw))
	var out []any
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			p.errorf("%s: document %d: %v", path, i+1, err)
			continue
		}
		obj := newObject(tm)
		if obj == nil {
			p.errorf("%s: document %d: %s %s is not a kind these manifests should contain", path, i+1, tm.APIVersion, tm.Kind)
			continue
		}
		// UnmarshalStrict: unknown fields and duplicate keys are errors.
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			p.errorf("%s: %s: %v", path, tm.Kind, err)
			continue
		}
		out = append(out, obj)
	}
	return out, nil
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' && !bytes.Equal(t, []byte("---")) {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func newObject(tm metav1.TypeMeta) any {
	switch tm.APIVersion + "/" + tm.Kind {
	case "v1/Namespace":
		return &corev1.Namespace{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "batch/v1/Job":
		return &batchv1.Job{}
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	}
	return nil
}

func (v *k8sCheck) add(o any) {
	p := &v.p
	meta, ok := o.(metav1.Object)
	if !ok {
		return
	}
	kind := fmt.Sprintf("%T", o)
	id := kind[strings.LastIndex(kind, ".")+1:] + "/" + meta.GetName()
	// Names and labels the API server would refuse.
	v.n++
	if errs := validation.IsDNS1123Subdomain(meta.GetName()); len(errs) > 0 {
		p.errorf("%s: name: %s", id, strings.Join(errs, "; "))
	}
	for k, val := range meta.GetLabels() {
		for _, e := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(val)...) {
			p.errorf("%s: label %s=%s: %s", id, k, val, e)
		}
	}
	switch x := o.(type) {
	case *corev1.Namespace:
		v.namespaces = append(v.namespaces, x)
		return
	case *corev1.ServiceAccount:
		v.accounts = append(v.accounts, x)
	case *rbacv1.Role:
		v.roles = append(v.roles, x)
	case *rbacv1.RoleBinding:
		v.bindings = append(v.bindings, x)
	case *appsv1.Deployment:
		v.deployments = append(v.deployments, x)
	case *corev1.Service:
		v.services = append(v.services, x)
		if errs := validation.IsDNS1035Label(x.Name); len(errs) > 0 {
			p.errorf("%s: a Service name must be a DNS-1035 label: %s", id, strings.Join(errs, "; "))
		}
	case *policyv1.PodDisruptionBudget:
		v.pdbs = append(v.pdbs, x)
	case *batchv1.Job:
		v.jobs = append(v.jobs, x)
	case *networkingv1.NetworkPolicy:
		v.policies = append(v.policies, x)
	case *corev1.Secret:
		p.errorf("%s: Secrets must not be part of the kustomization (create it with kubectl create secret)", id)
	}
	v.namespaced = append(v.namespaced, meta)
}

func (v *k8sCheck) checkAll() {
	p := &v.p
	// One namespace, and every namespaced object in it.
	v.n++
	if len(v.namespaces) != 1 {
		p.errorf("want exactly one Namespace, got %d", len(v.namespaces))
		return
	}
	ns := v.namespaces[0].Name
	v.namespaceFor = ns
	for _, o := range v.namespaced {
		v.n++
		if o.GetNamespace() != ns {
			p.errorf("%s: namespace %q, want %q", o.GetName(), o.GetNamespace(), ns)
		}
	}

	// RBAC: bindings point at Roles and ServiceAccounts that exist.
	for _, b := range v.bindings {
		v.n++
		if b.RoleRef.Kind != "Role" || !slices.ContainsFunc(v.roles, func(r *rbacv1.Role) bool { return r.Name == b.RoleRef.Name }) {
			p.errorf("RoleBinding/%s: roleRef %s/%s is not in the manifests", b.Name, b.RoleRef.Kind, b.RoleRef.Name)
		}
		for _, s := range b.Subjects {
			if s.Kind != "ServiceAccount" || s.Namespace != ns || !slices.ContainsFunc(v.accounts, func(a *corev1.ServiceAccount) bool { return a.Name == s.Name }) {
				p.errorf("RoleBinding/%s: subject %s %s/%s is not a ServiceAccount in the manifests", b.Name, s.Kind, s.Namespace, s.Name)
			}
		}
	}

	templates := map[string]*corev1.PodTemplateSpec{}
	for _, d := range v.deployments {
		id := "Deployment/" + d.Name
		templates[id] = &d.Spec.Template
		v.n++
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || d.Spec.Selector == nil || sel.Empty() {
			p.errorf("%s: needs a non-empty selector (%v)", id, err)
		} else if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			p.errorf("%s: selector %s does not match the pod template's labels", id, sel)
		}
		v.checkPod(id, &d.Spec.Template.Spec, true)
	}
	for _, j := range v.jobs {
		id := "Job/" + j.Name
		v.checkPod(id, &j.Spec.Template.Spec, false)
		v.n++
		if rp := j.Spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever {
			p.errorf("%s: restartPolicy must be OnFailure or Never", id)
		}
	}

	// Two Deployments must not select each other's pods.
	for _, a := range v.deployments {
		for _, b := range v.deployments {
			if a == b {
				continue
			}
			v.n++
			sel, _ := metav1.LabelSelectorAsSelector(a.Spec.Selector)
			if sel != nil && sel.Matches(labels.Set(b.Spec.Template.Labels)) {
				p.errorf("Deployment/%s's selector also matches Deployment/%s's pods", a.Name, b.Name)
			}
		}
	}

	// PDBs and Services select the pods of exactly one Deployment.
	for _, pdb := range v.pdbs {
		v.n++
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() {
			p.errorf("PodDisruptionBudget/%s: needs a non-empty selector", pdb.Name)
			continue
		}
		if got := matching(templates, func(t *corev1.PodTemplateSpec) bool { return sel.Matches(labels.Set(t.Labels)) }); len(got) != 1 {
			p.errorf("PodDisruptionBudget/%s: selects the pods of %v, want exactly one Deployment", pdb.Name, got)
		}
	}
	for _, s := range v.services {
		v.n++
		id := "Service/" + s.Name
		if len(s.Spec.Selector) == 0 {
			p.errorf("%s: no selector", id)
			continue
		}
		sel := labels.SelectorFromSet(s.Spec.Selector)
		got := matching(templates, func(t *corev1.PodTemplateSpec) bool { return sel.Matches(labels.Set(t.Labels)) })
		if len(got) != 1 {
			p.errorf("%s: selects the pods of %v, want exactly one Deployment", id, got)
			continue
		}
		t := templates[got[0]]
		for _, sp := range s.Spec.Ports {
			v.n++
			if sp.TargetPort.StrVal != "" && !hasNamedPort(&t.Spec, sp.TargetPort.StrVal) {
				p.errorf("%s: targetPort %q is not a port of %s", id, sp.TargetPort.StrVal, got[0])
			}
			if sp.TargetPort.StrVal == "" && !hasPortNumber(&t.Spec, sp.TargetPort.IntValue(), sp.Port) {
				p.errorf("%s: port %d reaches no container port of %s", id, sp.Port, got[0])
			}
		}
	}
	v.checkHookd()
	v.checkAdmin()
	v.checkAuth()
	v.checkPolicies()
}

func matching(templates map[string]*corev1.PodTemplateSpec, f func(*corev1.PodTemplateSpec) bool) []string {
	var out []string
	for id, t := range templates {
		if f(t) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func hasNamedPort(spec *corev1.PodSpec, name string) bool {
	for _, c := range spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == name {
				return true
			}
		}
	}
	return false
}

func hasPortNumber(spec *corev1.PodSpec, target int, port int32) bool {
	if target == 0 {
		target = int(port)
	}
	for _, c := range spec.Containers {
		for _, cp := range c.Ports {
			if int(cp.ContainerPort) == target {
				return true
			}
		}
	}
	return false
}

// checkPod holds every pod to the same bar: hardened, bounded, probed
// (long-running pods), and only referencing what exists.
func (v *k8sCheck) checkPod(id string, spec *corev1.PodSpec, longRunning bool) {
	p := &v.p
	v.n++
	if spec.ServiceAccountName != "" && !slices.ContainsFunc(v.accounts, func(a *corev1.ServiceAccount) bool { return a.Name == spec.ServiceAccountName }) {
		p.errorf("%s: serviceAccountName %q is not in the manifests", id, spec.ServiceAccountName)
	}
	if spec.ServiceAccountName == "" && (spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken) {
		p.errorf("%s: uses the default ServiceAccount: set automountServiceAccountToken: false", id)
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		p.errorf("%s: pod securityContext.runAsNonRoot must be true", id)
	}
	if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		p.errorf("%s: pod securityContext.runAsUser must be a non-zero UID", id)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p.errorf("%s: pod securityContext.seccompProfile must be RuntimeDefault (restricted Pod Security)", id)
	}
	for _, c := range spec.Containers {
		cid := id + " container " + c.Name
		v.n++
		if c.Image == "" {
			p.errorf("%s: no image", cid)
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			p.errorf("%s: securityContext.readOnlyRootFilesystem must be true", cid)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			p.errorf("%s: securityContext.allowPrivilegeEscalation must be false", cid)
		}
		if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			p.errorf("%s: securityContext.capabilities must drop ALL and add none", cid)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			if !hasReq || !hasLim {
				p.errorf("%s: needs resources.requests and resources.limits for %s", cid, r)
			} else if req.Cmp(lim) > 0 {
				p.errorf("%s: %s request %s exceeds its limit %s", cid, r, req.String(), lim.String())
			}
		}
		if longRunning {
			if c.ReadinessProbe == nil || c.LivenessProbe == nil {
				p.errorf("%s: needs readiness and liveness probes", cid)
			}
			for _, pr := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
				v.checkProbe(cid, &c, pr)
			}
		}
		var env []string
		for _, e := range c.Env {
			env = append(env, e.Name)
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				v.n++
				ref := e.ValueFrom.SecretKeyRef
				if keys := v.secrets[ref.Name]; keys == nil {
					p.errorf("%s: env %s reads Secret %q, which secret.example.yaml does not document", cid, e.Name, ref.Name)
				} else if !keys[ref.Key] {
					p.errorf("%s: env %s reads key %q of Secret %q, which secret.example.yaml does not define", cid, e.Name, ref.Key, ref.Name)
				}
			}
		}
		v.n += checkHookdArgs(p, cid, v.known, append(slices.Clone(c.Command), c.Args...), env)
		v.checkFileFlags(cid, spec, &c)
	}
	v.checkSecretVolumes(id, spec)
}

func (v *k8sCheck) checkProbe(cid string, c *corev1.Container, pr *corev1.Probe) {
	if pr == nil {
		return
	}
	p := &v.p
	v.n++
	switch {
	case pr.GRPC != nil:
		if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == pr.GRPC.Port }) {
			p.errorf("%s: gRPC probe on port %d, which the container does not declare", cid, pr.GRPC.Port)
		}
	case pr.HTTPGet != nil:
		port := pr.HTTPGet.Port
		if port.StrVal != "" && !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == port.StrVal }) {
			p.errorf("%s: HTTP probe on port %q, which the container does not declare", cid, port.StrVal)
		}
		if !slices.Contains([]string{"/healthz", "/readyz"}, pr.HTTPGet.Path) {
			p.errorf("%s: HTTP probe path %q is not /healthz or /readyz", cid, pr.HTTPGet.Path)
		}
	default:
		p.errorf("%s: probes must be gRPC or httpGet (the image has no shell for exec probes)", cid)
	}
}

// checkHookd checks the cluster design's contract: members advertise their
// pod IP and run with the Kubernetes provider and its RBAC; gateways reach
// every member through a headless Service that exists.
func (v *k8sCheck) checkHookd() {
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
	v.n++
	if member == nil || gateway == nil {
		p.errorf("want Deployments hookd-member and hookd-gateway")
		return
	}
	mc := member.Spec.Template.Spec.Containers[0]
	margs := append(slices.Clone(mc.Command), mc.Args...)
	for flagName, want := range map[string]string{"roles": "member", "cluster": "k8s", "cluster-port": "7000"} {
		v.n++
		if got, _ := argValue(margs, flagName); got != want {
			p.errorf("Deployment/hookd-member: --%s=%q, want %q", flagName, got, want)
		}
	}
	v.n++
	if !slices.ContainsFunc(mc.Env, func(e corev1.EnvVar) bool {
		return e.Name == "HOOKD_CLUSTER_HOST" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP"
	}) {
		p.errorf("Deployment/hookd-member: HOOKD_CLUSTER_HOST must come from status.podIP")
	}
	v.n++
	if !slices.ContainsFunc(mc.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == 7000 }) {
		p.errorf("Deployment/hookd-member: declares no container port 7000 (cluster traffic)")
	}
	// The k8s cluster provider's API calls: get and patch its own pod,
	// watch the members' pods.
	v.n++
	sa := member.Spec.Template.Spec.ServiceAccountName
	if a := member.Spec.Template.Spec.AutomountServiceAccountToken; a != nil && !*a {
		p.errorf("Deployment/hookd-member: the cluster provider needs the service-account token mounted")
	}
	granted := map[string]bool{}
	for _, b := range v.bindings {
		if !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return s.Kind == "ServiceAccount" && s.Name == sa }) {
			continue
		}
		for _, r := range v.roles {
			if r.Name != b.RoleRef.Name {
				continue
			}
			for _, rule := range r.Rules {
				if slices.Contains(rule.APIGroups, "") && slices.Contains(rule.Resources, "pods") {
					for _, verb := range rule.Verbs {
						granted[verb] = true
					}
				}
			}
		}
	}
	for _, verb := range []string{"get", "watch", "patch"} {
		v.n++
		if !granted[verb] {
			p.errorf("ServiceAccount/%s: may not %s pods (protoactor's Kubernetes provider needs get, watch, patch)", sa, verb)
		}
	}
	for verb := range granted {
		if !slices.Contains([]string{"get", "list", "watch", "patch"}, verb) {
			p.errorf("ServiceAccount/%s: granted %q on pods, more than the cluster provider needs", sa, verb)
		}
	}

	gc := gateway.Spec.Template.Spec.Containers[0]
	gargs := append(slices.Clone(gc.Command), gc.Args...)
	v.n++
	if got, _ := argValue(gargs, "roles"); got != "gateway" {
		p.errorf("Deployment/hookd-gateway: --roles=%q, want gateway", got)
	}
	v.n++
	target, _ := argValue(gargs, "ingest-addr")
	rest, ok := strings.CutPrefix(target, "dns:///")
	host, port, _ := strings.Cut(rest, ":")
	parts := strings.Split(host, ".")
	if !ok || len(parts) < 3 || parts[2] != "svc" {
		p.errorf("Deployment/hookd-gateway: --ingest-addr %q is not dns:///<service>.<namespace>.svc...:<port>", target)
		return
	}
	if parts[1] != v.namespaceFor {
		p.errorf("Deployment/hookd-gateway: --ingest-addr names namespace %q, the manifests use %q", parts[1], v.namespaceFor)
	}
	var svc *corev1.Service
	for _, s := range v.services {
		if s.Name == parts[0] {
			svc = s
		}
	}
	switch {
	case svc == nil:
		p.errorf("Deployment/hookd-gateway: --ingest-addr names Service %q, which is not in the manifests", parts[0])
	case svc.Spec.ClusterIP != corev1.ClusterIPNone:
		p.errorf("Service/%s: must be headless (clusterIP: None) so gRPC's round_robin sees every member", svc.Name)
	case !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(member.Spec.Template.Labels)):
		p.errorf("Service/%s: does not select hookd-member's pods", svc.Name)
	case !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return fmt.Sprint(sp.Port) == port }):
		p.errorf("Service/%s: has no port %s (from --ingest-addr)", svc.Name, port)
	}
}

// checkKustomization: every manifest in dir is listed, the example Secret
// is not.
func (v *k8sCheck) checkKustomization(dir string) {
	p := &v.p
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		p.errorf("%v", err)
		return
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		p.errorf("kustomization.yaml: %v", err)
		return
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		base := filepath.Base(f)
		if base == "kustomization.yaml" {
			continue
		}
		v.n++
		listed := slices.Contains(k.Resources, base)
		switch {
		case base == "secret.example.yaml" && listed:
			p.errorf("kustomization.yaml lists secret.example.yaml: real secrets are created with kubectl create secret")
		case base != "secret.example.yaml" && !listed:
			p.errorf("kustomization.yaml does not list %s", base)
		}
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

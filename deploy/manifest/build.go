package manifest

import (
	"fmt"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Build runs kustomize in-process on the kustomization in dir, as `kustomize build
// dir` would, and returns the rendered YAML. It returns kustomize's error, naming
// dir, for a missing or invalid kustomization, a resource or patch it cannot load,
// or a patch that does not apply.
func Build(dir string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: render: %w", dir, err)
	}
	return out, nil
}

// BuildSet is Build followed by Decode; it returns the error of either.
func BuildSet(dir string) (*Set, error) {
	out, err := Build(dir)
	if err != nil {
		return nil, err
	}
	s, err := Decode(out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return s, nil
}

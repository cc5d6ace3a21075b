package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/chaindock/chaindock/internal/apis"
)

// NetworkToObject converts a network to its stored form.
func NetworkToObject(n *apis.Network) (*Object, error) {
	spec, err := json.Marshal(n.Spec)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	status, err := json.Marshal(n.Status)
	if err != nil {
		return nil, fmt.Errorf("encode status: %w", err)
	}
	o := &Object{
		Kind:       apis.KindNetwork,
		Name:       n.Metadata.Name,
		UID:        n.Metadata.UID,
		Owner:      n.Metadata.Owner,
		Labels:     n.Metadata.Labels,
		Generation: n.Metadata.Generation,
		Spec:       spec,
		Status:     status,
		DeletedAt:  n.Metadata.DeletionTimestamp,
	}
	if n.Metadata.ResourceVersion != "" {
		rv, err := strconv.ParseInt(n.Metadata.ResourceVersion, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("metadata.resourceVersion %q is not a number", n.Metadata.ResourceVersion)
		}
		o.ResourceVersion = rv
	}
	if n.Metadata.CreationTimestamp != nil {
		o.CreatedAt = *n.Metadata.CreationTimestamp
	}
	return o, nil
}

// ObjectToNetwork converts a stored object back to a network.
func ObjectToNetwork(o *Object) (*apis.Network, error) {
	n := &apis.Network{
		APIVersion: apis.APIVersion,
		Kind:       apis.KindNetwork,
		Metadata: apis.ObjectMeta{
			Name:              o.Name,
			UID:               o.UID,
			Owner:             o.Owner,
			Labels:            o.Labels,
			ResourceVersion:   strconv.FormatInt(o.ResourceVersion, 10),
			Generation:        o.Generation,
			DeletionTimestamp: o.DeletedAt,
		},
	}
	if !o.CreatedAt.IsZero() {
		t := o.CreatedAt.UTC().Truncate(time.Millisecond)
		n.Metadata.CreationTimestamp = &t
	}
	if err := json.Unmarshal(o.Spec, &n.Spec); err != nil {
		return nil, fmt.Errorf("decode stored spec of %s: %w", o.Name, err)
	}
	if len(o.Status) > 0 {
		if err := json.Unmarshal(o.Status, &n.Status); err != nil {
			return nil, fmt.Errorf("decode stored status of %s: %w", o.Name, err)
		}
	}
	return n, nil
}

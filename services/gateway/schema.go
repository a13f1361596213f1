package main

import (
	"fmt"
	"os"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	// The google.api.http option must be known when the image is parsed,
	// and google.rpc.BadRequest when REST renders an error's details.
	_ "google.golang.org/genproto/googleapis/api/annotations"
	_ "google.golang.org/genproto/googleapis/rpc/errdetails"
)

// The services the gateway fronts, each with the config key of its address.
var backendServices = []struct {
	name    string // identity: gateway.identity_target
	service protoreflect.FullName
}{
	{"identity", "helpline.identity.v1.IdentityService"},
	{"catalog", "helpline.catalog.v1.CatalogService"},
	{"matching", "helpline.matching.v1.MatchingService"},
	{"sessions", "helpline.sessions.v1.SessionsService"},
	{"payments", "helpline.payments.v1.PaymentsService"},
}

// loadSchemas reads the build's protobuf image and finds the fronted services in it.
func loadSchemas(path string) (map[string]protoreflect.ServiceDescriptor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the APIs' descriptor set: %w", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%s is not a FileDescriptorSet: %w", path, err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return findServices(files)
}

func findServices(files *protoregistry.Files) (map[string]protoreflect.ServiceDescriptor, error) {
	found := map[string]protoreflect.ServiceDescriptor{}
	for _, backend := range backendServices {
		descriptor, err := files.FindDescriptorByName(backend.service)
		if err != nil {
			return nil, fmt.Errorf("the descriptor set has no %s: %w", backend.service, err)
		}
		service, ok := descriptor.(protoreflect.ServiceDescriptor)
		if !ok {
			return nil, fmt.Errorf("%s is not a service", backend.service)
		}
		found[backend.name] = service
	}
	return found, nil
}

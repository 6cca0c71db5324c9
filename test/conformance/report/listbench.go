package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// listBench measures ListContainers, which critest -benchmark does not: it
// runs N pods with one running container each, lists all containers N
// times, prints the median, and removes the pods again.
func listBench(args []string, out io.Writer) (retErr error) {
	fs := flag.NewFlagSet("listbench", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "", "CRI endpoint, unix:///path")
	image := fs.String("image", "", "container image")
	n := fs.Int("n", 30, "pods (one container each) and ListContainers calls")
	namespace := fs.String("namespace", "cri-test-namespace-listbench", "the pods' namespace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *endpoint == "" || *image == "" {
		return errors.New("usage: report listbench -endpoint unix:///path -image IMAGE [-n N]")
	}
	conn, err := grpc.NewClient(*endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rc := runtimeapi.NewRuntimeServiceClient(conn)
	ic := runtimeapi.NewImageServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	if _, err := ic.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: *image}}); err != nil {
		return fmt.Errorf("pull %s: %w", *image, err)
	}
	var pods []string
	defer func() {
		// a fresh context: the pods go even when ctx is done
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer ccancel()
		for _, id := range pods {
			if _, err := rc.StopPodSandbox(cctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("stop pod %s: %w", id, err))
			}
			if _, err := rc.RemovePodSandbox(cctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("remove pod %s: %w", id, err))
			}
		}
	}()
	for i := range *n {
		name := fmt.Sprintf("listbench-%d", i)
		pod := &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Uid: "cri-test-uid-" + name, Namespace: *namespace},
			Linux:    &runtimeapi.LinuxPodSandboxConfig{},
		}
		r, err := rc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
		if err != nil {
			return fmt.Errorf("run pod %s: %w", name, err)
		}
		pods = append(pods, r.GetPodSandboxId())
		c, err := rc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: r.GetPodSandboxId(),
			Config: &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"},
				Image:    &runtimeapi.ImageSpec{Image: *image, UserSpecifiedImage: *image},
				Command:  []string{"sleep", "3600"},
				Linux:    &runtimeapi.LinuxContainerConfig{},
			},
			SandboxConfig: pod,
		})
		if err != nil {
			return fmt.Errorf("create container in %s: %w", name, err)
		}
		if _, err := rc.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.GetContainerId()}); err != nil {
			return fmt.Errorf("start container in %s: %w", name, err)
		}
	}
	ds := make([]int64, 0, *n)
	listed := 0
	for range *n {
		t := time.Now()
		r, err := rc.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		if err != nil {
			return fmt.Errorf("list containers: %w", err)
		}
		ds = append(ds, time.Since(t).Nanoseconds())
		listed = len(r.GetContainers())
	}
	slices.Sort(ds)
	fmt.Fprintf(out, "list (%d samples, %d pods with a running container each; %d containers listed):\n", *n, *n, listed)
	fmt.Fprintf(out, "  %-16s median %8s  min %8s  max %8s\n", "ListContainers",
		dur(median(ds)), dur(ds[0]), dur(ds[len(ds)-1]))
	return nil
}

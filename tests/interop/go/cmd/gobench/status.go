package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/contenox/runtime/liblease"
	transportgrpc "github.com/contenox/runtime/runtime/transport/grpc"
)

// status is --status DATA_ROOT: what `cli.ts status` does, with the real Go
// packages (read the lease, then Health and Status over the Go client), so
// the bench can put the Go start-up cost next to the CLI's. Exit 3 when no
// live lease is held, like the CLI.
func status(root string) error {
	rec, err := liblease.Inspect(filepath.Join(root, "modeld.lease"))
	if err != nil || time.Now().After(rec.ExpiresAt()) {
		fmt.Println("modeld is not running")
		os.Exit(3)
	}
	c, err := transportgrpc.DialLeader(rec.Meta["endpoint"], rec.InstanceID)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := c.Health(ctx)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	fmt.Printf("modeld is running: endpoint %s, backend %s, instance %s, slot %s\n",
		rec.Meta["endpoint"], h.Backend, h.InstanceID, st.State)
	return nil
}

// Command hearth runs Hearth. See "hearth help" and the README.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	// Time zones built in: offline touches are read in the staff's zone, and a server image may have no
	// zoneinfo files.
	_ "time/tzdata"

	"github.com/hearth-cdp/hearth/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Command pause is the kindlab CI stand-in for the Kubernetes pod sandbox ("pause")
// container: it holds the pod's namespaces open and does nothing else.
//
// Behaviour: exits 0 on SIGINT or SIGTERM, reaps any zombie children (it is PID 1
// when the pod shares its PID namespace), and otherwise sleeps forever.
// Written for kindlab; build with CGO_ENABLED=0 for a static binary.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const version = "kindlab-pause-1"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println(version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "warning: pause should be the first process")
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		switch s {
		case syscall.SIGINT, syscall.SIGTERM:
			fmt.Fprintf(os.Stderr, "shutting down, got signal %v\n", s)
			os.Exit(0)
		case syscall.SIGCHLD:
			for {
				var st syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &st, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}

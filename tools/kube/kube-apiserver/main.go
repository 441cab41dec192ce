// kube-apiserver for Wren's tests and lab: the upstream command, built from the
// k8s.io/kubernetes release that go.mod pins. Nothing here ships with Wren.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}

// kube-controller-manager for Wren's tests, at the API server's own release: the tests run
// only its garbage collector, which deletes what an ownerReference ties to a deleted
// object (a WrenNode to its Node). Nothing here ships with Wren.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}

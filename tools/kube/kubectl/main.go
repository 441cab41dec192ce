// kubectl for Wren's tests and lab, at the API server's own release (Debian 12's
// kubernetes-client is 1.20, seventeen minor releases older, without `kubectl create
// token`). Nothing here ships with Wren.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}

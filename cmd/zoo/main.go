// Command zoo trains, evaluates and runs model plugins. See README.md.
package main

import (
	"os"

	"github.com/zoo-ml/zoo/host/cmd/root"
)

func main() { os.Exit(root.Main()) }

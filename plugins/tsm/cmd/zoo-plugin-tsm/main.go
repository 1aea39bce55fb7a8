// Command zoo-plugin-tsm serves the TSM video classifier to zoo.
package main

import (
	"github.com/zoo-ml/zoo/plugins/tsm"
	"github.com/zoo-ml/zoo/sdk"
)

func main() { sdk.Serve(tsm.Provider{}) }

// Command zoo-plugin-resnet serves the ResNet image classifier to zoo.
package main

import (
	"github.com/zoo-ml/zoo/plugins/resnet"
	"github.com/zoo-ml/zoo/sdk"
)

func main() { sdk.Serve(resnet.Provider{}) }

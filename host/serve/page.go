package serve

import _ "embed"

// page is the demo page at GET /: plain HTML and a little JavaScript, no
// external assets, so it works on a machine without a network.
//
//go:embed page.html
var page []byte

package weights

import "os/exec"

var execCommand = exec.Command

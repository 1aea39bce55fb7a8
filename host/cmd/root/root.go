// Package root assembles zoo's command tree and runs it.
package root

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	datacmd "github.com/zoo-ml/zoo/host/cmd/data"
	"github.com/zoo-ml/zoo/host/cmd/info"
	"github.com/zoo-ml/zoo/host/cmd/list"
	"github.com/zoo-ml/zoo/host/cmd/plugins"
	"github.com/zoo-ml/zoo/host/cmd/run"
	servecmd "github.com/zoo-ml/zoo/host/cmd/serve"
	weightscmd "github.com/zoo-ml/zoo/host/cmd/weights"
	"github.com/zoo-ml/zoo/host/cmdutil"
)

// Version is set at link time by the Makefile.
var Version = "dev"

// NewCmdRoot returns the zoo command with every verb under it.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "zoo",
		Short: "Train, evaluate and run published video and image models",
		Long: `zoo runs model plugins (separate executables speaking zoo's gRPC protocol)
through one generic train/test/infer driver.

Every flag can also be set from the environment as ZOO_<FLAG>, for example
ZOO_LOG_LEVEL=debug or ZOO_SAVE_DIR=/tmp/run; flags spelt with underscores
(--save_dir, as Paddle's scripts spell them) work too.`,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			applied, err := applyEnv(cmd)
			if err != nil {
				return err
			}
			switch f.LogLevel {
			case "trace", "debug", "info", "warn", "error", "off":
			default:
				return cmdutil.FlagErrorf("--log-level %q: use trace, debug, info, warn, error or off", f.LogLevel)
			}
			// Said at every log level: a ZOO_CONFIG or ZOO_WEIGHTS left in
			// the environment must not change a run unseen.
			for _, a := range applied {
				fmt.Fprintf(f.IO.ErrOut, "environment: %s=%s sets --%s\n", a.env, a.value, a.flag)
			}
			return nil
		},
	}
	cmd.PersistentFlags().StringVar(&f.LogLevel, "log-level", "warn", "host and plugin log level: trace, debug, info, warn, error, off")
	cmd.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cmdutil.FlagError{Err: err} })
	cmd.AddCommand(list.NewCmdList(f, nil))
	cmd.AddCommand(info.NewCmdInfo(f, nil))
	cmd.AddCommand(plugins.NewCmdPlugins(f))
	cmd.AddCommand(run.NewCmdRun(f, nil))
	cmd.AddCommand(servecmd.NewCmdServe(f, Version, nil))
	cmd.AddCommand(weightscmd.NewCmdWeights(f))
	cmd.AddCommand(datacmd.NewCmdData(f))
	usageErrors(cmd)
	return cmd
}

// envFlag is a flag applyEnv set from the environment.
type envFlag struct{ env, flag, value string }

// applyEnv sets every flag the user did not give from ZOO_<NAME> (dashes as
// underscores, upper case), so that env overrides defaults and flags
// override env. It returns the flags it set, in the order cobra lists them.
func applyEnv(cmd *cobra.Command) ([]envFlag, error) {
	var err error
	var applied []envFlag
	set := func(fl *pflag.Flag) {
		if err != nil || fl.Changed {
			return
		}
		key := "ZOO_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v, ok := os.LookupEnv(key); ok {
			if e := fl.Value.Set(v); e != nil {
				err = cmdutil.FlagErrorf("%s=%q: %v", key, v, e)
			}
			fl.Changed = true
			applied = append(applied, envFlag{env: key, flag: fl.Name, value: v})
		}
	}
	cmd.Flags().VisitAll(set)
	cmd.InheritedFlags().VisitAll(set)
	return applied, err
}

// Main runs zoo with the process's arguments and returns its exit code.
func Main() int {
	f := cmdutil.New()
	cmd := NewCmdRoot(f)
	ctx, sigs := watchSignals(context.Background(), f.IO.ErrOut)
	defer sigs.stop()
	err := cmd.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(f.IO.ErrOut, cmdutil.Message(err))
		var fe *cmdutil.FlagError
		if asFlagError(err, &fe) {
			fmt.Fprintf(f.IO.ErrOut, "Run '%s --help' for usage.\n", commandPath(cmd))
		}
	}
	return sigs.exitCode(cmdutil.ExitCode(err))
}

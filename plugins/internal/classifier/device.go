package classifier

import (
	"github.com/zoo-ml/zoo/dist"
	"github.com/zoo-ml/zoo/nn/resnet"
)

// Runner runs batches: a *resnet.Model's graphs on the CPU (its tape
// machine) or, in the CUDA build (device_zoocuda.go) with Device "gpu",
// the same graphs on the GPU through nn/cuda's executor. Every plugin
// that wraps a resnet.Model picks its device here (CheckGPU at Open,
// NewGPURunner on first use).
type Runner interface {
	Forward(mode resnet.Mode, input []float32, labels []int) (resnet.Result, error)
	TrainStep(input []float32, labels []int, lr float64) (resnet.Result, error)
	// SeedDropout restarts the dropout masks: each train step seeds its
	// own (StepSeed), so that resume is exact.
	SeedDropout(seed int64)
	Close() error
}

// GPURunner is a Runner holding the parameters, running statistics and
// velocities on the GPU; Download copies them back into the resnet.Model
// (for Save, and before Load changes them).
type GPURunner interface {
	Runner
	Download(m *resnet.Model) error
	DeviceGradients
}

// DeviceGradients is the seam of a data-parallel or micro-batch step on
// the GPU (Stepper.StepOn): each part's gradients come down into the
// model's Grad tensors (DownloadGradients), the Stepper sums the parts
// into its fused host buffer (the CPU path's layout and tree order) and
// allreduces it over ranks through the Communicator, and Update puts the
// averaged gradient back on the device and applies Momentum there. NCCL
// is the later step: a runner whose gradients sum and allreduce on the
// device would replace this host round trip here, and nothing else.
type DeviceGradients interface {
	// DownloadGradients copies the last training pass's gradients into
	// the model's Grad tensors.
	DownloadGradients() error
	// Update applies the model's Grad tensors with the Momentum rule on
	// the device.
	Update(lr float64) error
}

var _ Runner = (*resnet.Model)(nil)

// Device is a session's device for its resnet.Model: the CPU (the model
// itself) or, with GPU set, a GPURunner made on first use, so that it
// starts from the weights Load put in the model.
type Device struct {
	Plugin string // the executable, named in errors
	GPU    bool   // OpenRequest.Device "gpu"
	gpu    GPURunner
}

// Runner returns what runs the session's batches.
func (d *Device) Runner(m *resnet.Model) (Runner, error) {
	if !d.GPU {
		return m, nil
	}
	if d.gpu == nil {
		g, err := NewGPURunner(d.Plugin, m)
		if err != nil {
			return nil, err
		}
		d.gpu = g
	}
	return d.gpu, nil
}

// Active is the GPU runner in use: nil on the CPU and before the first
// Runner call (Stepper.StepOn takes it as is).
func (d *Device) Active() GPURunner { return d.gpu }

// Sync copies the GPU's parameters and velocities back into m; with drop
// it also releases them (Load changes m's parameters, so the next Runner
// call puts them on the GPU again).
func (d *Device) Sync(m *resnet.Model, drop bool) error {
	if d.gpu == nil {
		return nil
	}
	err := d.gpu.Download(m)
	if drop {
		if cerr := d.gpu.Close(); err == nil {
			err = cerr
		}
		d.gpu = nil
	}
	return err
}

// Close releases the GPU runner, if any.
func (d *Device) Close() {
	if d.gpu != nil {
		d.gpu.Close()
		d.gpu = nil
	}
}

// CloseSession releases what a ResNet-based session holds: the device,
// the model's graphs and the ranks' communicator (nil when alone); the
// first error is returned.
func CloseSession(dev *Device, m *resnet.Model, comm dist.Communicator) error {
	dev.Close()
	err := m.Close()
	if comm != nil {
		if cerr := comm.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// StartTrainPass makes every rank start a train pass from rank 0's
// parameters and velocities (after init, --pretrain, --weights or a
// resume): a GPU twin goes back to the host for the broadcast and is made
// again from the broadcast state.
func StartTrainPass(comm dist.Communicator, dev *Device, m *resnet.Model) error {
	if comm.Size() > 1 {
		if err := dev.Sync(m, true); err != nil {
			return err
		}
	}
	return BroadcastState(comm, m)
}

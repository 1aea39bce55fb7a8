package optim

import (
	"fmt"

	"gorgonia.org/tensor"
)

// Var is one trainable parameter as the optimizer sees it.
type Var struct {
	Name        string
	Value, Grad *tensor.Dense
	// LRMult scales the learning rate for this parameter (fluid's
	// ParamAttr learning_rate); 0 means 1.
	LRMult float64
	// NoDecay turns the L2 weight decay off for this parameter (fluid's
	// ParamAttr regularizer=L2Decay(0.)).
	NoDecay bool
}

// Momentum is fluid's Momentum optimizer (use_nesterov false) with an
// L2Decay regulariser, as fluid applies them: the regulariser adds
// decay*w to the gradient, then
//
//	v = mu*v + g
//	w = w - lr*mult*v
//
// so the decay is part of the gradient that enters the velocity, and the
// learning-rate multiplier scales the step, not the gradient.
type Momentum struct {
	Mu, L2Decay float64
	vel         map[string]*tensor.Dense
}

// NewMomentum returns a Momentum optimizer with zero velocities.
func NewMomentum(mu, l2Decay float64) *Momentum {
	return &Momentum{Mu: mu, L2Decay: l2Decay, vel: map[string]*tensor.Dense{}}
}

// VelocityName is the name fluid's save_persistables gives a parameter's
// Momentum velocity.
func VelocityName(param string) string { return param + "_velocity_0" }

// Velocity returns the velocity of the named parameter (nil before its
// first step); checkpoints store it as VelocityName(name).
func (o *Momentum) Velocity(name string) *tensor.Dense { return o.vel[name] }

// SetVelocity replaces a parameter's velocity, e.g. when resuming.
func (o *Momentum) SetVelocity(name string, v *tensor.Dense) { o.vel[name] = v }

// Step applies one update with learning rate lr to every var.
func (o *Momentum) Step(vars []Var, lr float64) error {
	for _, v := range vars {
		if v.Value == nil || v.Grad == nil {
			return fmt.Errorf("momentum: %s has no value or no gradient", v.Name)
		}
		if !v.Value.Shape().Eq(v.Grad.Shape()) || v.Value.Dtype() != v.Grad.Dtype() {
			return fmt.Errorf("momentum: %s is %v %v, its gradient %v %v", v.Name, v.Value.Dtype(), v.Value.Shape(), v.Grad.Dtype(), v.Grad.Shape())
		}
		vel := o.vel[v.Name]
		if vel == nil {
			vel = tensor.New(tensor.Of(v.Value.Dtype()), tensor.WithShape(v.Value.Shape()...))
			o.vel[v.Name] = vel
		}
		mult := v.LRMult
		if mult == 0 {
			mult = 1
		}
		decay := o.L2Decay
		if v.NoDecay {
			decay = 0
		}
		switch v.Value.Dtype() {
		case tensor.Float32:
			step(v.Value.Float32s(), v.Grad.Float32s(), vel.Float32s(), float32(o.Mu), float32(decay), float32(lr*mult))
		case tensor.Float64:
			step(v.Value.Float64s(), v.Grad.Float64s(), vel.Float64s(), o.Mu, decay, lr*mult)
		default:
			return fmt.Errorf("momentum: %s has dtype %v", v.Name, v.Value.Dtype())
		}
	}
	return nil
}

func step[T float32 | float64](w, g, vel []T, mu, decay, lr T) {
	for i := range w {
		vel[i] = mu*vel[i] + g[i] + decay*w[i]
		w[i] -= lr * vel[i]
	}
}

// Package optim holds the training-side arithmetic of zoo's Paddle models:
// fluid's Momentum optimizer with L2Decay regularisation and per-parameter
// learning-rate multipliers, and fluid's piecewise_decay learning rate.
// It works on plain tensors and knows nothing of graphs; nn/resnet uses it.
package optim

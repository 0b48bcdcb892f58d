// LockstepNN module.

// LockstepOptim module.

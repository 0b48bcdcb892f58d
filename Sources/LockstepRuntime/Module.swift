// LockstepRuntime module.

// LockstepCollectives module.

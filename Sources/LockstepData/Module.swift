// LockstepData module.
import CZlib

// LockstepTransport module.
import CZeroMQ

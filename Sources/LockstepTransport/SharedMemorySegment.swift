import CLockstepShm
import Glibc
import LockstepCollectives

/// One rank's inbox for the shared-memory data plane: a file in /dev/shm (or
/// any path on a memory-backed file system) mapped by this rank and by every
/// peer on the machine.
///
/// Layout (every field little-endian, every block 64-byte aligned):
/// ```
///  0  magic "LKSTSHM1" u64, version u32, world size u32, owner rank u32, pad u32,
///     job id u64, ring bytes u64
///  64 doorbell u32: bumped (and futex-woken) by any peer that wrote into one of
///     this rank's rings or freed room in a ring this rank writes into
///  68 sleepers u32: how many threads of the owner wait on the doorbell
/// 128 one ring per peer (the owner's own rank has none), in rank order:
///     head u64 (bytes ever written, by the sender), 56 bytes pad,
///     tail u64 (bytes ever read, by the owner), 56 bytes pad, data[ring bytes]
/// ```
/// The space is reserved with `posix_fallocate` when the segment is created,
/// so a full /dev/shm is a clear error then, not a SIGBUS mid-training.
final class SharedMemorySegment {
    static let magic: UInt64 = 0x314D_4853_5453_4B4C  // "LKSTSHM1"
    static let version: UInt32 = 1
    static let headerBytes = 128
    static let ringHeaderBytes = 128

    let path: String
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    let worldSize: Int
    let owner: Int
    let jobID: UInt64
    let ringBytes: Int
    /// Whether this process created the file (and removes it on close).
    let created: Bool

    static func byteCount(worldSize: Int, ringBytes: Int) -> Int {
        headerBytes + max(worldSize - 1, 0) * (ringHeaderBytes + ringBytes)
    }

    private init(path: String, base: UnsafeMutableRawPointer, byteCount: Int, worldSize: Int, owner: Int, jobID: UInt64,
                 ringBytes: Int, created: Bool) {
        self.path = path
        self.base = base
        self.byteCount = byteCount
        self.worldSize = worldSize
        self.owner = owner
        self.jobID = jobID
        self.ringBytes = ringBytes
        self.created = created
    }

    /// Creates the segment of rank `owner` (the file must not exist yet).
    convenience init(creating path: String, worldSize: Int, owner: Int, jobID: UInt64, ringBytes: Int) throws {
        let size = Self.byteCount(worldSize: worldSize, ringBytes: ringBytes)
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST {
                throw TransportError.notConnected(
                    "cannot create \(path): it exists (another job's, or left by one that died: remove it, or bind another name)")
            }
            throw Self.failure("cannot create", path)
        }
        defer { Glibc.close(fd) }
        let reserved = posix_fallocate(fd, 0, off_t(size))
        guard reserved == 0 else {
            unlink(path)
            throw TransportError.notConnected("cannot reserve \(size >> 20) MiB for \(path): \(String(cString: strerror(reserved))) (is /dev/shm large enough?)")
        }
        let map: UnsafeMutableRawPointer
        do { map = try Self.map(fd, size, path) } catch { unlink(path); throw error }
        self.init(path: path, base: map, byteCount: size, worldSize: worldSize, owner: owner, jobID: jobID,
                  ringBytes: ringBytes, created: true)
        // The header is written last; peers open the file only after the
        // coordinator's peer table names it, which is after this returns.
        base.storeBytes(of: UInt32(worldSize).littleEndian, toByteOffset: 12, as: UInt32.self)
        base.storeBytes(of: UInt32(owner).littleEndian, toByteOffset: 16, as: UInt32.self)
        base.storeBytes(of: jobID.littleEndian, toByteOffset: 24, as: UInt64.self)
        base.storeBytes(of: UInt64(ringBytes).littleEndian, toByteOffset: 32, as: UInt64.self)
        base.storeBytes(of: Self.version.littleEndian, toByteOffset: 8, as: UInt32.self)
        lockstep_store_release_u64(base.assumingMemoryBound(to: UInt64.self), Self.magic.littleEndian)
    }

    /// Maps the segment of rank `owner` created by that rank, checking that it
    /// belongs to this job.
    convenience init(opening path: String, worldSize: Int, owner: Int, jobID: UInt64) throws {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw Self.failure("cannot open", path) }
        defer { Glibc.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size >= Self.headerBytes else {
            throw TransportError.notConnected("\(path) is not a Lockstep shared-memory segment (too small)")
        }
        let size = Int(info.st_size)
        let map = try Self.map(fd, size, path)
        let magic = UInt64(littleEndian: lockstep_load_acquire_u64(map.assumingMemoryBound(to: UInt64.self)))
        let version = UInt32(littleEndian: map.load(fromByteOffset: 8, as: UInt32.self))
        let world = Int(UInt32(littleEndian: map.load(fromByteOffset: 12, as: UInt32.self)))
        let rank = Int(UInt32(littleEndian: map.load(fromByteOffset: 16, as: UInt32.self)))
        let job = UInt64(littleEndian: map.load(fromByteOffset: 24, as: UInt64.self))
        let ring = Int(UInt64(littleEndian: map.load(fromByteOffset: 32, as: UInt64.self)))
        let problem: String?
        if magic != Self.magic || version != Self.version {
            problem = "is not a Lockstep shared-memory segment of protocol version \(Self.version)"
        } else if job != jobID {
            problem = "belongs to another job (id \(job), this job is \(jobID))"
        } else if world != worldSize || rank != owner {
            problem = "is rank \(rank) of \(world), expected rank \(owner) of \(worldSize)"
        } else if ring <= 0 || ring % 64 != 0 || Self.byteCount(worldSize: world, ringBytes: ring) != size {
            problem = "has a ring size (\(ring) bytes) that does not match its length (\(size) bytes)"
        } else {
            problem = nil
        }
        if let problem {
            munmap(map, size)
            throw TransportError.notConnected("\(path) \(problem)")
        }
        self.init(path: path, base: map, byteCount: size, worldSize: worldSize, owner: owner, jobID: jobID,
                  ringBytes: ring, created: false)
    }

    deinit {
        munmap(base, byteCount)
        removeName()
    }

    /// Removes the file name (the mapping stays valid): once every peer has
    /// mapped the segment, nothing is left behind even if the process dies.
    func removeName() {
        if created && !nameRemoved { unlink(path) }
        nameRemoved = true
    }
    private var nameRemoved = false

    var doorbell: UnsafeMutablePointer<UInt32> { (base + 64).assumingMemoryBound(to: UInt32.self) }
    var sleepers: UnsafeMutablePointer<UInt32> { (base + 68).assumingMemoryBound(to: UInt32.self) }

    /// The ring that `sender` writes into and the owner reads from.
    func ring(from sender: Int) -> SharedRing {
        precondition(sender != owner && sender >= 0 && sender < worldSize, "no ring from rank \(sender)")
        let slot = sender < owner ? sender : sender - 1
        let start = base + Self.headerBytes + slot * (Self.ringHeaderBytes + ringBytes)
        return SharedRing(
            head: start.assumingMemoryBound(to: UInt64.self),
            tail: (start + 64).assumingMemoryBound(to: UInt64.self),
            data: start + Self.ringHeaderBytes, capacity: ringBytes)
    }

    /// Bumps the doorbell and wakes the owner if it sleeps.
    func wake() {
        lockstep_fetch_add_u32(doorbell, 1)
        if lockstep_load_seq_cst_u32(sleepers) != 0 { lockstep_futex_wake(doorbell, Int32.max) }
    }

    private static func map(_ fd: Int32, _ size: Int, _ path: String) throws -> UnsafeMutableRawPointer {
        guard let map = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), map != MAP_FAILED else {
            throw failure("cannot map", path)
        }
        return map
    }

    private static func failure(_ what: String, _ path: String) -> TransportError {
        .notConnected("\(what) \(path): \(String(cString: strerror(errno)))")
    }
}

/// A single-producer single-consumer byte ring inside a `SharedMemorySegment`.
/// `head` and `tail` count bytes ever written and read; `head - tail` bytes
/// are readable, `capacity - (head - tail)` writable.
struct SharedRing {
    let head: UnsafeMutablePointer<UInt64>
    let tail: UnsafeMutablePointer<UInt64>
    let data: UnsafeMutableRawPointer
    let capacity: Int
}

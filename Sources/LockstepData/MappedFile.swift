#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only: the page cache is the only copy of its bytes.
public final class MappedFile {
    public let path: String
    public let count: Int
    public let bytes: UnsafePointer<UInt8>

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw DataError.invalidArgument(path: path, reason: "no such file; check the path") }
            throw DataError.unreadable(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw DataError.unreadable(path: path, reason: "not a regular file")
        }
        count = Int(st.st_size)
        guard count > 0 else { throw DataError.invalidArgument(path: path, reason: "the file is empty") }
        guard let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw DataError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        madvise(p, count, MADV_SEQUENTIAL)
        bytes = UnsafePointer(p.assumingMemoryBound(to: UInt8.self))
    }

    private var released = 0

    /// Drops this mapping's pages before `offset` from the process (the page cache keeps
    /// them; reading them again maps them back): a pass over a large file holds a
    /// bounded window of it, not the whole file.
    public func release(upTo offset: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let end = min(offset, count) / page * page
        guard end - released >= 16 << 20 else { return }
        madvise(UnsafeMutableRawPointer(mutating: bytes + released), end - released, MADV_DONTNEED)
        released = end
    }

    /// Starts releasing from the beginning again (before a second pass).
    public func rewind() {
        release(upTo: count)
        released = 0
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: bytes), count) }
}

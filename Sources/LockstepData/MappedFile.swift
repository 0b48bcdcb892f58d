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
            if code == ENOENT { throw DataError.invalidArgument(path: path, reason: "no such file; check the path in [data]") }
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

    deinit { munmap(UnsafeMutableRawPointer(mutating: bytes), count) }
}

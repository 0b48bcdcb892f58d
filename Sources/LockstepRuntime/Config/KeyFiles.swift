import Foundation
import LockstepTransport

/// CurveZMQ keys as files: `NAME.key` holds a secret key (Z85, mode 0600) and
/// `NAME.pub` beside it the public key; an allowlist is a directory of `.pub` files.
public enum KeyFiles {
    /// Writes a fresh key pair as `dir/name.key` (0600) and `dir/name.pub` (0644),
    /// creating `dir` (0700) if needed. Never overwrites a key.
    @discardableResult
    public static func generate(in dir: String, name: String) throws -> (secret: String, public: String) {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "._-".contains($0) }), !name.hasPrefix(".") else {
            throw LockstepError("--name \(name): use letters, digits, '.', '_' or '-', e.g. --name worker1")
        }
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw LockstepError("--out \(dir): cannot create the directory (\(error.localizedDescription))")
            }
        } else if !isDirectory.boolValue {
            throw LockstepError("--out \(dir): not a directory")
        }
        let secretPath = dir + "/" + name + ".key", publicPath = dir + "/" + name + ".pub"
        for path in [secretPath, publicPath] where FileManager.default.fileExists(atPath: path) {
            throw LockstepError("\(path) already exists; choose another --name or remove the old key pair first")
        }
        let pair = try CurveKeyPair.generate()
        try write(pair.secretKey + "\n", to: secretPath, mode: 0o600)
        try write(pair.publicKey + "\n", to: publicPath, mode: 0o644)
        return (secretPath, publicPath)
    }

    /// Reads a secret key file, refusing one that group or others can read.
    public static func readSecret(_ path: String, flag: String) throws -> CurveKeyPair {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw LockstepError("\(flag) \(path): no such file; make a key pair with `lockstep keygen --out DIR --name NAME`")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw LockstepError("\(flag) \(path): not a regular file") }
        guard st.st_mode & 0o077 == 0 else {
            throw LockstepError("\(flag) \(path): the secret key is readable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))); run chmod 600 \(path)")
        }
        let text = try readKeyText(path, flag: flag)
        guard let pair = CurveKeyPair(secretKey: text) else {
            throw LockstepError("\(flag) \(path): not a secret key (40 Z85 characters, as `lockstep keygen` writes)")
        }
        return pair
    }

    /// Reads a public key file.
    public static func readPublic(_ path: String, flag: String) throws -> String {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw LockstepError("\(flag) \(path): no such file; give a .pub file written by `lockstep keygen`")
        }
        let text = try readKeyText(path, flag: flag)
        guard CurveKeyPair.isKey(text) else {
            throw LockstepError("\(flag) \(path): not a public key (40 Z85 characters, as `lockstep keygen` writes)")
        }
        return text
    }

    /// The public keys of every `.pub` file in `dir`, by file name.
    public static func readAllowlist(_ dir: String, flag: String) throws -> [String: String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue,
              let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            throw LockstepError("\(flag) \(dir): no such directory; give a directory of .pub files (the admitted public keys)")
        }
        var keys: [String: String] = [:]
        for name in names.sorted() where name.hasSuffix(".pub") {
            keys[name] = try readPublic(dir + "/" + name, flag: flag)
        }
        guard !keys.isEmpty else { throw LockstepError("\(flag) \(dir): holds no .pub files; copy the public keys of the job's processes there") }
        return keys
    }

    /// A key file's first line, trimmed; files are small, so at most 4 KiB are read.
    private static func readKeyText(_ path: String, flag: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.read(upToCount: 4096) else {
            throw LockstepError("\(flag) \(path): cannot be read")
        }
        try? handle.close()
        let text = String(decoding: data, as: UTF8.self)
        return String(text.split(separator: "\n", omittingEmptySubsequences: true).first ?? "").trimmingCharacters(in: .whitespaces)
    }

    private static func write(_ text: String, to path: String, mode: Int) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
            throw LockstepError("cannot write \(path); check that the directory is writable")
        }
    }
}

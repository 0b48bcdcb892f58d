/// One entry of a model description, as written in a config's `layers` list:
/// `"linear 512"`, `"batchnorm"`, `"relu"`, `"leaky_relu"`, `"sigmoid"`, `"tanh"`,
/// `"maxout 2"` (pieces), `"dropout 0.5"`; for images `"conv 32 3"` (channels, kernel,
/// optional `stride S` and `pad P`), `"maxpool 2"` (optional `stride S`), `"avgpool 2"`
/// and `"flatten"`.
public enum LayerSpec: Equatable, Sendable, CustomStringConvertible {
    case linear(Int)
    case batchNorm
    case activation(ActivationKind)
    case maxout(Int)
    case dropout(Float)
    /// Output channels, square kernel, stride, zero padding.
    case conv(channels: Int, kernel: Int, stride: Int, pad: Int)
    /// Square window and stride (PyTorch's default stride is the window).
    case maxPool(kernel: Int, stride: Int)
    case avgPool(kernel: Int, stride: Int)
    case flatten

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Widest layer a config may ask for (`linear N`, `maxout K`): a typo must not size an allocation.
    public static let maximumWidth = 1 << 20
    /// Largest kernel, window, stride or padding of an image layer.
    public static let maximumKernel = 1024
    /// Largest layer output a sample may have, in floats (a 1024-channel 128×128 map).
    public static let maximumActivation = 1 << 24

    /// Whether the layer reads its input as an image (so the model's input stays one).
    public var needsImage: Bool {
        switch self {
        case .conv, .maxPool, .avgPool: return true
        default: return false
        }
    }

    public init(parsing text: String) throws {
        let words = text.split(separator: " ").map(String.init)
        guard let head = words.first?.lowercased() else {
            throw ParseError(description: "empty layer entry in model.layers; write e.g. \"linear 512\" or \"relu\"")
        }
        func argument<T>(_ parse: (String) -> T?, _ what: String) throws -> T {
            guard words.count == 2, let v = parse(words[1]) else {
                throw ParseError(description: "layer \"\(text)\": expected \"\(head) <\(what)>\"")
            }
            return v
        }
        func noArgument() throws {
            guard words.count == 1 else {
                let note = head == "leaky_relu" ? " (its negative slope is PyTorch's default, 0.01)" : ""
                throw ParseError(description: "layer \"\(text)\": \"\(head)\" takes no argument\(note); write \"\(head)\"")
            }
        }
        switch head {
        case "linear":
            let n: Int = try argument({ Int($0) }, "output features")
            guard n > 0, n <= LayerSpec.maximumWidth else {
                throw ParseError(description: "layer \"\(text)\": output features must be between 1 and \(LayerSpec.maximumWidth)")
            }
            self = .linear(n)
        case "batchnorm", "batch_norm", "bn":
            try noArgument()
            self = .batchNorm
        case "maxout":
            let k: Int = try argument({ Int($0) }, "pieces")
            guard k >= 2, k <= 1024 else { throw ParseError(description: "layer \"\(text)\": maxout needs 2 to 1024 pieces") }
            self = .maxout(k)
        case "conv", "conv2d":
            self = try LayerSpec.image(words, text, positional: ["channels", "kernel"], options: ["stride": 1, "pad": 0]) { v in
                guard v["channels"]! <= LayerSpec.maximumWidth else {
                    throw ParseError(description: "layer \"\(text)\": channels must be between 1 and \(LayerSpec.maximumWidth)")
                }
                return .conv(channels: v["channels"]!, kernel: v["kernel"]!, stride: v["stride"]!, pad: v["pad"]!)
            }
        case "maxpool", "max_pool", "maxpool2d":
            self = try LayerSpec.image(words, text, positional: ["kernel"], options: ["stride": -1]) { v in
                .maxPool(kernel: v["kernel"]!, stride: v["stride"]! < 0 ? v["kernel"]! : v["stride"]!)
            }
        case "avgpool", "avg_pool", "avgpool2d":
            self = try LayerSpec.image(words, text, positional: ["kernel"], options: ["stride": -1]) { v in
                .avgPool(kernel: v["kernel"]!, stride: v["stride"]! < 0 ? v["kernel"]! : v["stride"]!)
            }
        case "flatten":
            try noArgument()
            self = .flatten
        case "dropout":
            let p: Float = try argument({ Float($0) }, "probability")
            guard p >= 0, p < 1 else { throw ParseError(description: "layer \"\(text)\": dropout probability must be in [0, 1)") }
            self = .dropout(p)
        default:
            guard let kind = ActivationKind(rawValue: head) else {
                throw ParseError(description: "unknown layer \"\(text)\"; use linear N, conv C K [stride S] [pad P], maxpool K [stride S], avgpool K, flatten, batchnorm, relu, leaky_relu, sigmoid, tanh, maxout K or dropout P")
            }
            try noArgument()
            self = .activation(kind)
        }
    }

    public var description: String {
        switch self {
        case .linear(let n): return "linear \(n)"
        case .batchNorm: return "batchnorm"
        case .activation(let k): return k.rawValue
        case .maxout(let k): return "maxout \(k)"
        case .dropout(let p): return "dropout \(p)"
        case .conv(let c, let k, let s, let p):
            return "conv \(c) \(k)" + (s != 1 ? " stride \(s)" : "") + (p != 0 ? " pad \(p)" : "")
        case .maxPool(let k, let s): return "maxpool \(k)" + (s != k ? " stride \(s)" : "")
        case .avgPool(let k, let s): return "avgpool \(k)" + (s != k ? " stride \(s)" : "")
        case .flatten: return "flatten"
        }
    }

    /// Parses `head a b … [name value]…`: positional integers, then named options (`stride 2`).
    private static func image(_ words: [String], _ text: String, positional: [String], options: [String: Int],
                              _ make: ([String: Int]) throws -> LayerSpec) throws -> LayerSpec {
        let usage = "expected \"\(words[0]) " + positional.map { "<\($0)>" }.joined(separator: " ")
            + options.keys.sorted().map { " [\($0) N]" }.joined() + "\""
        var values = options
        guard words.count >= 1 + positional.count, (words.count - 1 - positional.count) % 2 == 0 else {
            throw ParseError(description: "layer \"\(text)\": \(usage)")
        }
        for (i, name) in positional.enumerated() {
            guard let v = Int(words[1 + i]), v >= 1 else { throw ParseError(description: "layer \"\(text)\": \(name) must be a positive integer; \(usage)") }
            values[name] = v
        }
        var i = 1 + positional.count
        while i < words.count {
            let name = words[i].lowercased()
            guard options[name] != nil else { throw ParseError(description: "layer \"\(text)\": unknown option \"\(words[i])\"; \(usage)") }
            guard let v = Int(words[i + 1]), v >= (name == "pad" ? 0 : 1) else {
                throw ParseError(description: "layer \"\(text)\": \(name) must be \(name == "pad" ? "a non-negative" : "a positive") integer")
            }
            values[name] = v
            i += 2
        }
        for (name, v) in values where v > maximumKernel {
            guard name != "channels" else { continue }
            throw ParseError(description: "layer \"\(text)\": \(name) \(v) is larger than \(maximumKernel)")
        }
        return try make(values)
    }

    /// Replaces every activation with `kind`; for maxout with k pieces, the Linear
    /// feeding it is widened k-fold so the hidden widths stay the same.
    public static func substituting(activation name: String, maxoutPieces: Int, in specs: [LayerSpec]) throws -> [LayerSpec] {
        let isActivation: (LayerSpec) -> Bool = {
            switch $0 { case .activation, .maxout: return true; default: return false }
        }
        if name == "maxout" {
            var out: [LayerSpec] = []
            for spec in specs {
                if isActivation(spec) {
                    // Widen the nearest preceding Linear.
                    if let i = out.lastIndex(where: { if case .linear = $0 { return true } else { return false } }),
                       case .linear(let n) = out[i] {
                        out[i] = .linear(n * maxoutPieces)
                    }
                    out.append(.maxout(maxoutPieces))
                } else {
                    out.append(spec)
                }
            }
            return out
        }
        guard let kind = ActivationKind(rawValue: name) else {
            throw ParseError(description: "unknown activation \"\(name)\"; use relu, leaky_relu, sigmoid, tanh or maxout")
        }
        return specs.map { isActivation($0) ? .activation(kind) : $0 }
    }
}

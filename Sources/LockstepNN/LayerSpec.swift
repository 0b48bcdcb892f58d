/// One entry of a model description, as written in a config's `layers` list:
/// `"linear 512"`, `"batchnorm"`, `"relu"`, `"leaky_relu"`, `"sigmoid"`, `"tanh"`,
/// `"maxout 2"` (pieces), `"dropout 0.5"`.
public enum LayerSpec: Equatable, Sendable, CustomStringConvertible {
    case linear(Int)
    case batchNorm
    case activation(ActivationKind)
    case maxout(Int)
    case dropout(Float)

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Widest layer a config may ask for (`linear N`, `maxout K`): a typo must not size an allocation.
    public static let maximumWidth = 1 << 20

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
        case "dropout":
            let p: Float = try argument({ Float($0) }, "probability")
            guard p >= 0, p < 1 else { throw ParseError(description: "layer \"\(text)\": dropout probability must be in [0, 1)") }
            self = .dropout(p)
        default:
            guard let kind = ActivationKind(rawValue: head) else {
                throw ParseError(description: "unknown layer \"\(text)\"; use linear N, batchnorm, relu, leaky_relu, sigmoid, tanh, maxout K or dropout P")
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
        }
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

import Foundation
import LockstepRuntime

/// `lockstep plot`: loss and accuracy per epoch from a `--metrics` file, as one SVG
/// with two panels (training loss; training and test accuracy), drawn by hand.
/// Restarts recorded in the file are marked on both panels.
public struct TrainingCurves {
    public struct Epoch: Equatable {
        public var epoch: Int
        public var loss: Double
        public var trainAccuracy: Double
        public var testAccuracy: Double
    }

    public var epochs: [Epoch] = []
    /// Epoch index (0-based position in `epochs`) after which a restart happened.
    public var restartsAfter: [Int] = []

    /// Reads the JSON lines of `path`; lines that are not metrics objects are skipped.
    public init(metricsFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LockstepError("\(path): cannot read it; give the --metrics file of a run (JSON lines)")
        }
        guard data.count <= 1 << 28 else { throw LockstepError("\(path): \(data.count) bytes, more than a metrics file has") }
        for line in data.split(separator: UInt8(ascii: "\n")) {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else { continue }
            switch o["event"] as? String {
            case "epoch":
                guard let e = o["epoch"] as? Int else { continue }
                epochs.append(Epoch(epoch: e, loss: Self.number(o["loss"]), trainAccuracy: Self.number(o["train_accuracy"]),
                                    testAccuracy: Self.number(o["test_accuracy"])))
            case "restart":
                restartsAfter.append(epochs.count)
            default:
                continue
            }
        }
        guard !epochs.isEmpty else {
            throw LockstepError("\(path): no epoch lines; give the --metrics file of a run that finished at least one epoch")
        }
    }

    private static func number(_ v: Any?) -> Double { (v as? NSNumber)?.doubleValue ?? .nan }

    static let colours = ["#1f77b4", "#d62728", "#2ca02c"]

    public func svg(width: Double = 900, height: Double = 380) -> String {
        let panel = (width - 40) / 2
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        let x = epochs.indices.map { Double($0 + 1) }
        out += self.panel(title: "training loss", left: 20, width: panel, height: height, x: x,
                          series: [("loss", epochs.map(\.loss))], percent: false)
        out += self.panel(title: "accuracy", left: 20 + panel, width: panel, height: height, x: x,
                          series: [("train", epochs.map(\.trainAccuracy)), ("test", epochs.map(\.testAccuracy))], percent: true)
        return out + "</svg>\n"
    }

    private func panel(title: String, left: Double, width: Double, height: Double, x: [Double],
                       series: [(String, [Double])], percent: Bool) -> String {
        let l = left + 60, r = left + width - 10, t = 40.0, b = height - 45
        let values = series.flatMap(\.1).filter(\.isFinite)
        var lo = values.min() ?? 0, hi = values.max() ?? 1
        if hi - lo < 1e-9 { (lo, hi) = (lo - 0.5, hi + 0.5) }
        let pad = (hi - lo) * 0.05
        (lo, hi) = (lo - pad, hi + pad)
        let xmax = max(x.last ?? 1, 2)
        func px(_ v: Double) -> Double { l + (v - 1) / (xmax - 1) * (r - l) }
        func py(_ v: Double) -> Double { b - (v - lo) / (hi - lo) * (b - t) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var s = "<text x=\"\(f((l + r) / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">\(title)</text>\n"
        s += "<rect x=\"\(f(l))\" y=\"\(f(t))\" width=\"\(f(r - l))\" height=\"\(f(b - t))\" fill=\"none\" stroke=\"#888\"/>\n"
        for i in 0...4 {
            let v = lo + (hi - lo) * Double(i) / 4
            let label = percent ? String(format: "%.1f%%", 100 * v) : String(format: "%.3f", v)
            s += "<line x1=\"\(f(l))\" x2=\"\(f(r))\" y1=\"\(f(py(v)))\" y2=\"\(f(py(v)))\" stroke=\"#eee\"/>"
            s += "<text x=\"\(f(l - 5))\" y=\"\(f(py(v) + 4))\" text-anchor=\"end\">\(label)</text>\n"
        }
        let ticks = Swift.max(1, Int(xmax) / 10)
        for e in stride(from: 1, through: Int(xmax), by: ticks) {
            s += "<text x=\"\(f(px(Double(e))))\" y=\"\(f(b + 16))\" text-anchor=\"middle\">\(e)</text>"
        }
        s += "<text x=\"\(f((l + r) / 2))\" y=\"\(f(b + 34))\" text-anchor=\"middle\">epoch</text>\n"
        for after in restartsAfter {
            let xr = px(Double(after) + 0.5)
            s += "<line x1=\"\(f(xr))\" x2=\"\(f(xr))\" y1=\"\(f(t))\" y2=\"\(f(b))\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>"
            s += "<text x=\"\(f(xr + 3))\" y=\"\(f(t + 12))\" fill=\"#666\">restart</text>\n"
        }
        for (k, (name, ys)) in series.enumerated() {
            let colour = Self.colours[k % Self.colours.count]
            let points = zip(x, ys).filter { $0.1.isFinite }.map { "\(f(px($0.0))),\(f(py($0.1)))" }
            s += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
            for p in points {
                let xy = p.split(separator: ",")
                s += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"2.5\" fill=\"\(colour)\"/>"
            }
            s += "\n<text x=\"\(f(r - 8))\" y=\"\(f(t + 16 + 16 * Double(k)))\" text-anchor=\"end\" fill=\"\(colour)\">\(name)</text>\n"
        }
        return s
    }
}

import LockstepKernels
import LockstepRuntime
import LockstepTransport
import Foundation

/// A small SVG line chart, log-log: step time against workers.
///
/// Written by hand (no plotting dependency): measured points as dots, model
/// predictions as lines, one colour per series, a legend, decade grid lines.
public struct ScalingPlot {
    public struct Series {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// Dots only (measured) instead of a line (predicted).
        public var markers: Bool
        public var dashed: Bool
        public init(name: String, points: [(x: Double, y: Double)], markers: Bool = false, dashed: Bool = false) {
            self.name = name
            self.points = points
            self.markers = markers
            self.dashed = dashed
        }
    }

    public var title: String
    public var xLabel = "workers"
    public var yLabel = "step time (ms)"
    public var series: [Series]

    public init(title: String, series: [Series]) {
        self.title = title
        self.series = series
    }

    static let colours = ["#000000", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]

    public func svg(width: Double = 760, height: Double = 480) -> String {
        let all = series.flatMap(\.points).filter { $0.x > 0 && $0.y > 0 }
        guard !all.isEmpty else { return "<svg xmlns=\"http://www.w3.org/2000/svg\"/>" }
        let lx = (floor(log10(all.map(\.x).min()!)), ceil(log10(all.map(\.x).max()!)))
        var ly = (floor(log10(all.map(\.y).min()!)), ceil(log10(all.map(\.y).max()!)))
        if ly.0 == ly.1 { ly.1 += 1 }
        let left = 70.0, right = 230.0, top = 40.0, bottom = 50.0
        let pw = width - left - right, ph = height - top - bottom
        func px(_ x: Double) -> Double { left + (log10(x) - lx.0) / max(lx.1 - lx.0, 1e-9) * pw }
        func py(_ y: Double) -> Double { top + ph - (log10(y) - ly.0) / (ly.1 - ly.0) * ph }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }

        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(f(left + pw / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">\(esc(title))</text>\n"
        // Grid: powers of two on x, decades on y.
        var x = pow(2, (lx.0 * log2(10)).rounded(.down))
        while x <= pow(10, lx.1) * 1.0001 {
            if x >= pow(10, lx.0) * 0.9999 {
                s += "<line x1=\"\(f(px(x)))\" y1=\"\(f(top))\" x2=\"\(f(px(x)))\" y2=\"\(f(top + ph))\" stroke=\"#ddd\"/>\n"
                s += "<text x=\"\(f(px(x)))\" y=\"\(f(top + ph + 16))\" text-anchor=\"middle\">\(Int(x))</text>\n"
            }
            x *= 2
        }
        for d in Int(ly.0)...Int(ly.1) {
            let y = pow(10, Double(d))
            s += "<line x1=\"\(f(left))\" y1=\"\(f(py(y)))\" x2=\"\(f(left + pw))\" y2=\"\(f(py(y)))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(py(y) + 4))\" text-anchor=\"end\">\(y >= 1 ? String(Int(y)) : String(format: "%g", y))</text>\n"
        }
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"#333\"/>\n"
        s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">\(esc(xLabel)) (log scale)</text>\n"
        s += "<text transform=\"translate(18 \(f(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel)) (log scale)</text>\n"

        for (i, series) in series.enumerated() {
            let colour = Self.colours[i % Self.colours.count]
            let pts = series.points.filter { $0.x > 0 && $0.y > 0 }
            if series.markers {
                for p in pts { s += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"4\" fill=\"\(colour)\"/>\n" }
            } else if !pts.isEmpty {
                let path = pts.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
                s += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\"\(series.dashed ? " stroke-dasharray=\"6 4\"" : "")/>\n"
            }
            let ly = top + 14 + Double(i) * 20, lx0 = left + pw + 14
            if series.markers {
                s += "<circle cx=\"\(f(lx0 + 12))\" cy=\"\(f(ly - 4))\" r=\"4\" fill=\"\(colour)\"/>\n"
            } else {
                s += "<line x1=\"\(f(lx0))\" y1=\"\(f(ly - 4))\" x2=\"\(f(lx0 + 24))\" y2=\"\(f(ly - 4))\" stroke=\"\(colour)\" stroke-width=\"2\"\(series.dashed ? " stroke-dasharray=\"6 4\"" : "")/>\n"
            }
            s += "<text x=\"\(f(lx0 + 30))\" y=\"\(f(ly))\">\(esc(series.name))</text>\n"
        }
        return s + "</svg>\n"
    }
}

import LockstepData

/// The rows `lockstep predict` reads: a CSV with a header (feature columns in training's
/// order; a column named like training's label is ignored) or a `.npy` array (N×…),
/// transformed as training transformed its files.
public enum PredictionInput {
    public static func read(path: String, transform: DataTransform, label: String = "label") throws -> (rows: [Float], count: Int) {
        let f = transform.features
        var rows: [Float], count: Int
        do {
            if path.lowercased().hasSuffix(".npy") {
                let x = try NPYArray(path: path)
                guard x.isFloatingOrByte else {
                    throw DataError.invalidArgument(path: path, reason: "unsupported dtype '\(x.dtype)'; save features as float32, float64 or uint8")
                }
                let width = x.shape.count >= 2 ? x.rowSize : (x.shape.first ?? 0)
                guard width == f else {
                    throw DataError.invalidArgument(path: path, reason: "shape \(x.shape): the model reads \(transform.shape) = \(f) values a sample; save an N×\(f) array (or N×\(transform.shape.map(String.init).joined(separator: "×")))")
                }
                count = x.shape.count >= 2 ? x.count : 1
                rows = x.floats(rows: 0..<count)
            } else if path.lowercased().hasSuffix(".csv") {
                let table = try CSVTable(path: path, label: label, requireLabel: false)
                guard table.featureCount == f else {
                    throw DataError.invalidArgument(path: path, reason: "line 1: \(table.featureCount) feature columns, the model reads \(f) (a column named \"\(label)\" is ignored)")
                }
                count = table.rows
                rows = table.features
            } else {
                throw DataError.invalidArgument(path: path, reason: "unknown input type; give a .csv file with a header or a .npy array")
            }
        } catch let e as DataError {
            throw LockstepError("--input \(e.description)")
        }
        transform.apply(&rows)
        return (rows, count)
    }
}

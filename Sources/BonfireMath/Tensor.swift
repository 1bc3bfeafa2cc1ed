// A dense, row-major Float tensor: a shape plus contiguous storage. Deliberately minimal (llm.c style):
// layers operate on raw buffers with the shape written beside each one; `Tensor` carries data between them.

package struct Tensor: Equatable, Sendable {
    package var shape: [Int]
    package var data: [Float]

    package init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count,
                     "Tensor: shape \(shape) has \(shape.reduce(1, *)) elements but data has \(data.count)")
        self.shape = shape
        self.data = data
    }

    package init(zeros shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    package init(shape: [Int], generator: (Int) -> Float) {
        let n = shape.reduce(1, *)
        self.shape = shape
        self.data = (0..<n).map(generator)
    }

    package var count: Int { data.count }
    package var rank: Int { shape.count }

    /// Row-major flat index of a multi-index.
    package func offset(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "Tensor.offset: index \(index) for shape \(shape)")
        var o = 0
        for (i, d) in zip(index, shape) {
            precondition(i >= 0 && i < d, "Tensor.offset: index \(index) out of bounds for shape \(shape)")
            o = o * d + i
        }
        return o
    }

    package subscript(_ index: Int...) -> Float {
        get { data[offset(index)] }
        set { data[offset(index)] = newValue }
    }

    package func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, data: data)
    }
}

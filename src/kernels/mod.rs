//! Fused element-wise kernels of the recurrent cells. They know nothing of layers: each works
//! on rows of contiguous buffers, and each forward saves exactly what its backward needs.

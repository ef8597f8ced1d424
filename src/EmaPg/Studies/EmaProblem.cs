using static TorchSharp.torch;

namespace EmaPg.Studies;

/// <summary>
/// A quadratic EMA-PG problem (§4): Fisher F (symmetric PSD, d×d, float64) with its eigendecomposition,
/// and a constant gradient g. F is either diagonal (given spectrum) or a random Wishart matrix A·Aᵀ/d.
/// </summary>
public sealed class EmaProblem
{
    public required double[,] Fisher { get; init; }
    public required double[] Gradient { get; init; }
    /// <summary>Eigenvalues of F, descending.</summary>
    public required double[] Lambdas { get; init; }
    /// <summary>Eigenvectors of F as columns, in the order of <see cref="Lambdas"/>.</summary>
    public required double[,] Eigenvectors { get; init; }
    public int Dim => Gradient.Length;
    public double LambdaMax => Lambdas[0];

    public static EmaProblem Diagonal(IReadOnlyList<double> lambdas, int seed)
    {
        int d = lambdas.Count;
        var f = new double[d, d];
        for (int i = 0; i < d; i++) f[i, i] = lambdas[i];
        return FromFisher(f, RandomGradient(d, seed));
    }

    public static EmaProblem RandomPsd(int dim, int seed)
    {
        using var scope = NewDisposeScope();
        var gen = new TorchSharp.torch.Generator((ulong)seed);
        var a = randn(dim, dim, dtype: ScalarType.Float64, generator: gen);
        var f = a.matmul(a.T) / dim;
        return FromFisher(ToArray(f), RandomGradient(dim, seed + 1));
    }

    public static EmaProblem FromFisher(double[,] fisher, double[] gradient)
    {
        using var scope = NewDisposeScope();
        int d = gradient.Length;
        var f = FromArray(fisher);
        if (!allclose(f, f.T, 1e-12, 1e-12)) throw new ArgumentException("the Fisher matrix must be symmetric");
        var (vals, vecs) = linalg.eigh(f);
        var order = vals.argsort(descending: true);
        vals = vals.index_select(0, order);
        vecs = vecs.index_select(1, order);
        var lambdas = vals.data<double>().ToArray();
        if (lambdas.Last() < -1e-12 * Math.Max(1, lambdas[0])) throw new ArgumentException("the Fisher matrix must be positive semidefinite");
        return new EmaProblem { Fisher = fisher, Gradient = gradient, Lambdas = lambdas.Select(l => Math.Max(l, 0)).ToArray(), Eigenvectors = ToArray(vecs) };
    }

    /// <summary>Components v_iᵀx of a vector in F's eigenbasis.</summary>
    public double[] Project(double[] x)
    {
        int d = Dim;
        var r = new double[d];
        for (int i = 0; i < d; i++) for (int j = 0; j < d; j++) r[i] += Eigenvectors[j, i] * x[j];
        return r;
    }

    public static double[] MatVec(double[,] m, double[] x)
    {
        int d = x.Length;
        var r = new double[d];
        for (int i = 0; i < d; i++) { double s = 0; for (int j = 0; j < d; j++) s += m[i, j] * x[j]; r[i] = s; }
        return r;
    }

    private static double[] RandomGradient(int d, int seed)
    {
        using var scope = NewDisposeScope();
        var g = randn(d, dtype: ScalarType.Float64, generator: new TorchSharp.torch.Generator((ulong)seed + 7919));
        return g.data<double>().ToArray();
    }

    internal static Tensor FromArray(double[,] m)
    {
        int r = m.GetLength(0), c = m.GetLength(1);
        var flat = new double[r * c];
        Buffer.BlockCopy(m, 0, flat, 0, flat.Length * sizeof(double));
        return tensor(flat, dtype: ScalarType.Float64).reshape(r, c);
    }

    internal static double[,] ToArray(Tensor t)
    {
        var c = t.contiguous();
        int r = (int)c.shape[0], n = (int)c.shape[1];
        var flat = c.data<double>().ToArray();
        var m = new double[r, n];
        Buffer.BlockCopy(flat, 0, m, 0, flat.Length * sizeof(double));
        return m;
    }
}

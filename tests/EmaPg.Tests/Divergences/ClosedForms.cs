namespace EmaPg.Tests.Divergences;

/// <summary>
/// Hand-written closed forms for the two KLs, independent of the library: softmax, the values, and their
/// gradients in the policy logits (∂KL/∂z_i = π_i(ℓ_i − KL); ∂FKL/∂z_i = π_i − π_ref,i).
/// </summary>
internal static class ClosedForms
{
    public static double[] Softmax(double[] z)
    {
        double m = z.Max();
        var e = z.Select(v => Math.Exp(v - m)).ToArray();
        double s = e.Sum();
        return e.Select(v => v / s).ToArray();
    }

    public static double ReverseKl(double[] p, double[] r) => p.Select((pi, i) => pi * Math.Log(pi / r[i])).Sum();
    public static double ForwardKl(double[] p, double[] r) => r.Select((ri, i) => ri * Math.Log(ri / p[i])).Sum();

    public static double[] ReverseKlGrad(double[] p, double[] r)
    {
        double kl = ReverseKl(p, r);
        return p.Select((pi, i) => pi * (Math.Log(pi / r[i]) - kl)).ToArray();
    }

    public static double[] ForwardKlGrad(double[] p, double[] r) => p.Select((pi, i) => pi - r[i]).ToArray();

    /// <summary>∇_z M_q, M_q = Σ_{j∈q} π_j: ∂M_q/∂z_i = π_i(1(i∈q) − M_q).</summary>
    public static double[] MassGrad(double[] p, long[] q)
    {
        var set = q.ToHashSet();
        double m = q.Sum(j => p[j]);
        return p.Select((pi, i) => pi * ((set.Contains(i) ? 1.0 : 0.0) - m)).ToArray();
    }

    public static double[] Add(double[] a, double[] b, double sb = 1.0) => a.Select((v, i) => v + sb * b[i]).ToArray();
}

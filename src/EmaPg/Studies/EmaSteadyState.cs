namespace EmaPg.Studies;

/// <summary>Closed forms of App. C for constant g and F: Lemma 4.1 (k-step map), eq. 62–63 (steady lag), eq. 67 (quasi-steady KL).</summary>
public static class EmaSteadyState
{
    /// <summary>χ_i = η − αβλ_i (eq. 45).</summary>
    public static double Chi(double lambda, double alpha, double beta, double eta) => eta - alpha * beta * lambda;

    /// <summary>eq. 62: δ_* = α((1 − η)I + αβF)⁻¹g, by solving the linear system.</summary>
    public static double[] LagMatrix(EmaProblem p, double alpha, double beta, double eta)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var f = EmaProblem.FromArray(p.Fisher);
        var a = TorchSharp.torch.eye(p.Dim, dtype: TorchSharp.torch.ScalarType.Float64) * (1 - eta) + f * (alpha * beta);
        var g = TorchSharp.torch.tensor(p.Gradient, dtype: TorchSharp.torch.ScalarType.Float64);
        return (TorchSharp.torch.linalg.solve(a, g) * alpha).data<double>().ToArray();
    }

    /// <summary>eq. 63: δ_*^{(i)} = α g^{(i)} / ((1 − η) + αβλ_i), in F's eigenbasis.</summary>
    public static double[] LagModes(EmaProblem p, double alpha, double beta, double eta)
    {
        var gi = p.Project(p.Gradient);
        return gi.Select((g, i) => alpha * g / ((1 - eta) + alpha * beta * p.Lambdas[i])).ToArray();
    }

    /// <summary>eq. 67: KL_* ≈ (α²/2) Σ_i λ_i (g^{(i)})² / ((1 − η) + αβλ_i)².</summary>
    public static double Kl(EmaProblem p, double alpha, double beta, double eta)
    {
        var gi = p.Project(p.Gradient);
        double s = 0;
        for (int i = 0; i < p.Dim; i++) s += p.Lambdas[i] * gi[i] * gi[i] / Math.Pow((1 - eta) + alpha * beta * p.Lambdas[i], 2);
        return alpha * alpha / 2 * s;
    }

    /// <summary>½ δᵀFδ, the quadratic KL of a lag (eq. 65).</summary>
    public static double QuadraticKl(EmaProblem p, double[] lag)
    {
        var fl = EmaProblem.MatVec(p.Fisher, lag);
        return 0.5 * lag.Zip(fl, (a, b) => a * b).Sum();
    }

    /// <summary>
    /// Lemma 4.1 from θ_0 = δ_0 = 0: δ_k = αS_k g and θ_k = (αkI − α²βFM_k) g, with
    /// S_k = (I − D^k)(I − D)⁻¹ and M_k = (kI − S_k)(I − D)⁻¹, evaluated mode-wise (D = Σ χ_i v_i v_iᵀ).
    /// Returned in F's eigenbasis.
    /// </summary>
    public static (double[] Theta, double[] Lag) LemmaK(EmaProblem p, double alpha, double beta, double eta, int k)
    {
        var gi = p.Project(p.Gradient);
        var th = new double[p.Dim];
        var lag = new double[p.Dim];
        for (int i = 0; i < p.Dim; i++)
        {
            double chi = Chi(p.Lambdas[i], alpha, beta, eta);
            double s = (1 - Math.Pow(chi, k)) / (1 - chi);
            double m = (k - s) / (1 - chi);
            lag[i] = alpha * s * gi[i];
            th[i] = (alpha * k - alpha * alpha * beta * p.Lambdas[i] * m) * gi[i];
        }
        return (th, lag);
    }
}

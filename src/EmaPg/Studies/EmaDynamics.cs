namespace EmaPg.Studies;

/// <summary>A simulated trajectory of the linearised EMA-PG dynamics.</summary>
public sealed record EmaTrajectory(double Alpha, double Beta, double Eta, IReadOnlyList<double[]> Theta, IReadOnlyList<double[]> Lag, bool Converged, bool Overflowed)
{
    public int Steps => Lag.Count - 1;
}

/// <summary>
/// Direct simulation of eq. 5 and the EMA recursion (eq. 2) on a quadratic problem with constant g and F:
/// θ_{t+1} = θ_t + αg − αβFδ_t, θ_ema,t+1 = ηθ_ema,t + (1−η)θ_t, δ_t = θ_t − θ_ema,t, from θ_0 = θ_ema,0 = 0.
/// It iterates θ and θ_ema themselves (not the lag recursion of Lemma C.1), so it checks that lemma too.
/// Stops when the lag has converged (‖δ_{t+1} − δ_t‖ ≤ tol·‖δ_{t+1}‖), has blown up (‖δ‖ &gt; 1e100), or after maxSteps.
/// </summary>
public static class EmaDynamics
{
    public static EmaTrajectory Simulate(EmaProblem p, double alpha, double beta, double eta, int maxSteps = 20_000, int minSteps = 64, double tolerance = 1e-14)
    {
        int d = p.Dim;
        var theta = new double[d];
        var ema = new double[d];
        var thetas = new List<double[]> { (double[])theta.Clone() };
        var lags = new List<double[]> { new double[d] };
        bool converged = false, overflow = false;
        for (int t = 0; t < maxSteps; t++)
        {
            var lag = lags[^1];
            var fLag = EmaProblem.MatVec(p.Fisher, lag);
            var next = new double[d];
            var nextEma = new double[d];
            for (int i = 0; i < d; i++)
            {
                next[i] = theta[i] + alpha * p.Gradient[i] - alpha * beta * fLag[i];
                nextEma[i] = eta * ema[i] + (1 - eta) * theta[i];
            }
            theta = next;
            ema = nextEma;
            var newLag = new double[d];
            for (int i = 0; i < d; i++) newLag[i] = theta[i] - ema[i];
            thetas.Add((double[])theta.Clone());
            lags.Add(newLag);
            double norm = Norm(newLag), step = Distance(newLag, lag);
            if (!double.IsFinite(norm) || norm > 1e100) { overflow = true; break; }
            if (t + 1 >= minSteps && step <= tolerance * norm) { converged = true; break; }
        }
        return new EmaTrajectory(alpha, beta, eta, thetas, lags, converged, overflow);
    }

    /// <summary>
    /// The trainer's schedule instead of §4's: <paramref name="stepsPerAnchorUpdate"/> steps θ ← θ + αg − αβF(θ − θ_ema) with the
    /// anchor fixed, then θ_ema ← ηθ_ema + (1−η)θ; returns ‖δ_c − δ_{c−1}‖ for the lag δ_c after each of <paramref name="cycles"/>
    /// anchor updates (δ_0 = 0), which decays geometrically when the lag settles and grows when it diverges (stops past 1e100).
    /// </summary>
    public static IReadOnlyList<double> SimulateSchedule(EmaProblem p, double alpha, double beta, double eta, int stepsPerAnchorUpdate, int cycles)
    {
        int d = p.Dim;
        var theta = new double[d];
        var ema = new double[d];
        var norms = new List<double>();
        var previous = new double[d];
        for (int c = 0; c < cycles; c++)
        {
            for (int s = 0; s < stepsPerAnchorUpdate; s++)
            {
                var lag = new double[d];
                for (int i = 0; i < d; i++) lag[i] = theta[i] - ema[i];
                var fLag = EmaProblem.MatVec(p.Fisher, lag);
                for (int i = 0; i < d; i++) theta[i] += alpha * p.Gradient[i] - alpha * beta * fLag[i];
            }
            for (int i = 0; i < d; i++) ema[i] = eta * ema[i] + (1 - eta) * theta[i];
            var delta = new double[d];
            for (int i = 0; i < d; i++) delta[i] = theta[i] - ema[i];
            norms.Add(Distance(delta, previous));
            previous = delta;
            if (!(norms[^1] < 1e100)) break;
        }
        return norms;
    }

    public static double Norm(double[] x) => Math.Sqrt(x.Sum(v => v * v));

    public static double Distance(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
        return Math.Sqrt(s);
    }
}

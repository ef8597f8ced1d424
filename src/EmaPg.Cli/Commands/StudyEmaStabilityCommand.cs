using EmaPg.Stability;
using System.CommandLine;
using EmaPg.Common;
using EmaPg.Studies;
using Spectre.Console;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg study ema-stability`: simulated EMA-PG lag dynamics vs Lemmas 4.1–4.2 and eq. 62–67.</summary>
public static class StudyEmaStabilityCommand
{
    public static Command Create()
    {
        var cmd = new Command("ema-stability", "EMA-anchor stability (§4, App. C): simulate θ_{t+1} = θ_t + αg − αβFδ_t with an EMA anchor on a quadratic problem, over a sweep of αβλ_max/η; compare the regime the simulation shows with eq. 9, and the steady lag and KL with eq. 62–63 and 67.");
        var lambdas = new Option<string>("--lambdas") { Description = "Diagonal Fisher spectrum, each ≥ 0 (used when --dim is 0)", DefaultValueFactory = _ => "1,0.5,0.2,0.1,0.05" };
        var dim = new Option<int>("--dim") { Description = "Dimension of a random Wishart Fisher A·Aᵀ/d instead of --lambdas, 0..256 (0: use --lambdas)", DefaultValueFactory = _ => 0 };
        var eta = new Option<string>("--eta") { Description = "EMA coefficients η, each in (0, 1)", DefaultValueFactory = _ => "0.9,0.99" };
        var ratios = new Option<string?>("--ratios") { Description = "Values of αβλ_max/η, each in [0, 100] (default: 11 values spanning the three regimes, both boundaries included)" };
        var alpha = new Option<double>("--alpha") { Description = "Step size α > 0 (β follows from the ratio)", DefaultValueFactory = _ => 0.01 };
        var seed = new Option<int>("--seed") { Description = "Seed of g (and of the random Fisher), ≥ 0", DefaultValueFactory = _ => 0 };
        var steps = new Option<int>("--max-steps") { Description = "Simulation steps at most, 100..1000000", DefaultValueFactory = _ => 20000 };
        var outDir = new Option<string>("--out") { Description = "Output directory", DefaultValueFactory = _ => "out/ema-stability" };
        var noPlot = new Option<bool>("--no-plot") { Description = "Skip the PNG plot" };
        foreach (var o in new Option[] { lambdas, dim, eta, ratios, alpha, seed, steps, outDir, noPlot }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            int d = Check.Range("--dim", pr.GetValue(dim), 0, 256);
            var config = new EmaStabilityConfig
            {
                Lambdas = d == 0 ? ListParse.Doubles("--lambdas", pr.GetValue(lambdas)!, 0, 1e12) : [],
                Dim = d,
                Etas = ListParse.Doubles("--eta", pr.GetValue(eta)!, 0, 1, minInclusive: false, maxInclusive: false),
                Ratios = pr.GetValue(ratios) is string s ? ListParse.Doubles("--ratios", s, 0, 100) : null,
                Alpha = Check.Range("--alpha", pr.GetValue(alpha), 0, 1e6, minInclusive: false),
                Seed = Check.Range("--seed", pr.GetValue(seed), 0, int.MaxValue),
                MaxSteps = Check.Range("--max-steps", pr.GetValue(steps), 100, 1_000_000),
            };
            if (d == 0 && config.Lambdas.Max() <= 0) throw new UserError("--lambdas must contain a positive eigenvalue.");
            var r = EmaStabilityStudy.Run(config);
            var dir = Check.DirectoryPath(pr.GetValue(outDir), "--out");
            if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 220;
            var t = new Table().Border(TableBorder.Rounded)
                .Title($"EMA-PG lag dynamics: d = {r.Problem.Dim}, λ_max = {r.Problem.LambdaMax:G4}, α = {config.Alpha}")
                .AddColumns("η", "αβλmax/η", "αβλmax", "χ_min", "lemma (eq. 9)", "simulation", "agree", "steps", "‖δ‖ err vs eq. 62", "err vs eq. 63", "KL ½δᵀFδ", "KL eq. 67", "KL err", "Lemma 4.1 err");
            string E(double x) => double.IsNaN(x) ? "—" : x.ToString("0.0e+00");
            foreach (var x in r.Rows)
                t.AddRow(x.Eta.ToString("0.###"), x.Ratio.ToString("0.###"), x.AlphaBetaLambdaMax.ToString("0.####"), x.ChiMin.ToString("0.###"),
                    StabilityLemma.Describe(x.Predicted), StabilityLemma.Describe(x.Simulated), x.Agrees ? "[green]✓[/]" : "[red]✗[/]", x.Steps.ToString(),
                    E(x.LagEq62RelError), E(x.LagEq63RelError), double.IsNaN(x.Kl) ? "—" : x.Kl.ToString("G4"), x.KlEq67.ToString("G4"), E(x.KlRelError), E(x.Lemma41RelError));
            AnsiConsole.Write(t);
            int lemma = r.Rows.Count(x => !x.Agrees);
            AnsiConsole.MarkupLine(lemma == 0
                ? $"[green]Simulation and Lemma 4.2 agree on all {r.Rows.Count} runs.[/]"
                : $"[red]Simulation and Lemma 4.2 disagree on {lemma} of {r.Rows.Count} runs (see the table / CSV).[/]");
            var st = new Table().Border(TableBorder.Rounded)
                .Title("The trainer's schedule: S optimiser steps with the anchor fixed, then the EMA update; unstable from αβλ_max = 1 + η^(−1/S)")
                .AddColumns("η", "S", "1 + η^(−1/S)", "αβλmax / boundary", "lag growth per anchor update", "predicted", "simulation", "agree");
            foreach (var x in r.Schedule)
                st.AddRow(x.Eta.ToString("0.###"), x.Steps.ToString(), x.Boundary.ToString("0.####"), x.Ratio.ToString("0.##"), x.GrowthPerCycle.ToString("0.####"),
                    x.PredictedStable ? "stable" : "unstable", x.SimulatedStable ? "stable" : "unstable", x.Agrees ? "[green]✓[/]" : "[red]✗[/]");
            AnsiConsole.Write(st);
            int sched = r.Schedule.Count(x => !x.Agrees);
            AnsiConsole.MarkupLine(sched == 0
                ? $"[green]Simulation and the schedule's boundary agree on all {r.Schedule.Count} runs.[/]"
                : $"[red]Simulation and the schedule's boundary disagree on {sched} of {r.Schedule.Count} runs.[/]");
            AnsiConsole.MarkupLine("[grey]Regimes are read off the simulated trajectory: lag increments that stop shrinking (unstable), eigen-components that alternate sign while decaying (oscillatory), or neither (monotone).[/]");
            var files = new List<string> { EmaStabilityStudy.WriteCsv(r, dir), EmaStabilityStudy.WriteScheduleCsv(r, dir) };
            if (!pr.GetValue(noPlot)) files.Add(EmaStabilityPlot.Save(r, dir));
            foreach (var f in files) AnsiConsole.MarkupLine($"[grey]wrote {Markup.Escape(f)}[/]");
            return r.Disagreements == 0 ? 0 : 1;
        });
        return cmd;
    }
}

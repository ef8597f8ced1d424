using System.CommandLine;
using System.Text.Json;
using EmaPg.Audit;
using EmaPg.Common;
using EmaPg.Divergences;
using Spectre.Console;

namespace EmaPg.Cli.Commands;

/// <summary>`emapg audit`: exact-expectation bias of every estimator on a random categorical problem.</summary>
public static class AuditCommand
{
    public static Command Create()
    {
        var cmd = new Command("audit", "Exact-expectation audit: bias of every KL / f-divergence estimator and every policy loss in value and gradient, and of App. J/K's group losses against the appendix's claims, by enumerating a small vocabulary in float64.");
        var vocab = new Option<int>("--vocab") { Description = "Vocabulary size, 2..64", DefaultValueFactory = _ => 32 };
        var k = new Option<int>("--k") { Description = "Top-k size, 0..vocab", DefaultValueFactory = _ => 4 };
        var seed = new Option<int>("--seed") { Description = "Seed of the random problem", DefaultValueFactory = _ => 0 };
        var off = new Option<bool>("--off-policy") { Description = "Sample from a perturbed policy π_sampling ≠ π_θ (weights s = π_θ/π_sampling)" };
        var sMin = new Option<double>("--s-min") { Description = "Lower clip of the off-policy weight s, ≥ 0", DefaultValueFactory = _ => 0.0 };
        var sMax = new Option<double>("--s-max") { Description = "Upper clip of the off-policy weight s, ≥ s-min (default: no clip)", DefaultValueFactory = _ => double.PositiveInfinity };
        var alpha = new Option<double>("--alpha") { Description = "α of the α-divergence, ∉ {0, 1}", DefaultValueFactory = _ => 0.5 };
        var groupSize = new Option<int>("--group-size") { Description = $"Responses per group N of App. J/K's group losses, 2..8, with |V|^N ≤ {GroupLossAudit.MaxGroups}", DefaultValueFactory = _ => 2 };
        var json = new Option<bool>("--json") { Description = "Print a JSON object {estimators, policyLosses, groupLosses} instead of tables" };
        foreach (var o in new Option[] { vocab, k, seed, off, sMin, sMax, alpha, groupSize, json }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            int v = Check.Range("--vocab", pr.GetValue(vocab), 2, 64);
            int kk = Check.Range("--k", pr.GetValue(k), 0, v);
            var opts = new EstimatorOptions { SMin = pr.GetValue(sMin), SMax = pr.GetValue(sMax), Alpha = pr.GetValue(alpha) };
            Check.Range("--s-min", opts.SMin, 0, double.PositiveInfinity);
            Check.Range("--s-max", opts.SMax, opts.SMin, double.PositiveInfinity);
            opts = opts.Validated();
            int n = Check.Range("--group-size", pr.GetValue(groupSize), 2, 8);
            if (Math.Pow(v, n) > GroupLossAudit.MaxGroups)
                throw new UserError($"--vocab {v} with --group-size {n} gives {v}^{n} groups to enumerate; at most {GroupLossAudit.MaxGroups} (e.g. --vocab 16 --group-size 4).");
            var problem = CategoricalProblem.Random(v, pr.GetValue(off), pr.GetValue(seed));
            var rows = EstimatorAudit.Run(problem, kk, opts);
            var losses = PolicyLossAudit.Run(problem, pr.GetValue(seed));
            var groups = GroupLossAudit.Run(problem, pr.GetValue(seed), n, opts.Alpha);
            if (pr.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new { estimators = rows, policyLosses = losses, groupLosses = groups },
                    new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
                return 0;
            }
            if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
            var t = new Table().Border(TableBorder.Rounded)
                .Title($"Exact-expectation audit: |V| = {v}, k = {kk}, {(pr.GetValue(off) ? "off-policy" : "on-policy")}, seed {pr.GetValue(seed)}")
                .AddColumns("estimator", "eq.", "target", "value rel. err", "grad rel. err", "value", "gradient", "E[[∇]] equals ∇ of");
            foreach (var r in rows)
                t.AddRow(r.Estimator, Markup.Escape(r.Equation), Markup.Escape(r.Target), r.ValueRelError.ToString("0.0e+00"), r.GradientRelError.ToString("0.0e+00"),
                    r.ValueUnbiased ? "[green]✓ unbiased[/]" : "[red]✗ biased[/]", r.GradientUnbiased ? "[green]✓ unbiased[/]" : "[red]✗ biased[/]", Markup.Escape(r.GradientMatches));
            AnsiConsole.Write(t);
            var lt = new Table().Border(TableBorder.Rounded)
                .Title(Markup.Escape($"Policy losses: E_π_old[loss] against −J = −E_π_θ[A] + β·D, β = {PolicyLossAudit.Beta}, no clipping, A ~ N(0, 1) per token"))
                .AddColumns("loss", "form", "objective", "value rel. err", "grad rel. err", "value", "gradient", "E[[∇]] equals ∇ of");
            foreach (var r in losses)
                lt.AddRow(r.Loss, Markup.Escape(r.Equation), Markup.Escape(r.Objective), r.ValueRelError.ToString("0.0e+00"), r.GradientRelError.ToString("0.0e+00"),
                    r.ValueUnbiased ? "[green]✓ unbiased[/]" : "[red]✗ biased[/]", r.GradientUnbiased ? "[green]✓ unbiased[/]" : "[red]✗ biased[/]", Markup.Escape(r.GradientMatches));
            AnsiConsole.Write(lt);
            var gt = new Table().Border(TableBorder.Rounded)
                .Title(Markup.Escape($"Group losses of App. J/K: exact E[∇loss] over all {v}^{n} groups against the appendix's claim; π* ∝ π_ref·e^R, R/β ~ N(0, 1) per token"))
                .AddColumns("loss", "eq.", "Z(x)", "claimed: E[[∇]] = ∇ of", "claimed in", "grad rel. err", "verdict", "E[[∇]] equals ∇ of");
            foreach (var r in groups)
                gt.AddRow(r.Loss, Markup.Escape(r.Equation), Markup.Escape(r.Partition), Markup.Escape(r.Claim), Markup.Escape(r.ClaimSource), r.GradientRelError.ToString("0.0e+00"),
                    r.AsClaimed ? "[green]✓ as claimed[/]" : "[red]✗ not as claimed[/]", Markup.Escape(r.GradientEquals));
            AnsiConsole.Write(gt);
            AnsiConsole.MarkupLine($"[grey]unbiased, as claimed ⇔ relative error < {EstimatorAudit.Tolerance:0e+0}; expectations are exact sums over all {v} tokens in float64.[/]");
            return 0;
        });
        return cmd;
    }
}

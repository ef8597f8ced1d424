using System.CommandLine;

namespace EmaPg.Cli.Commands;

public static class AuditCommand
{
    public static Command Create()
    {
        var cmd = new Command("audit", "Exact-expectation audit of every KL / f-divergence estimator.");
        var vocab = new Option<int>("--vocab") { Description = "Vocabulary size (2..64)", DefaultValueFactory = _ => 16 };
        cmd.Options.Add(vocab);
        cmd.SetAction(pr =>
        {
            Common.Check.Range("--vocab", pr.GetValue(vocab), 2, 64);
            Console.WriteLine("audit: not yet");
            return 0;
        });
        return cmd;
    }
}

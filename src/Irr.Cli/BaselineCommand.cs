using System.CommandLine;

namespace Irr.Cli;

/// <summary>
/// <c>irr baseline</c>: the cheaper post-hoc safety fixes IRR is compared with (docs/BASELINES.md): RESTA (add the
/// safety vector back) and Safe LoRA (project LoRA updates onto the alignment subspace).
/// </summary>
internal static class BaselineCommand
{
    public static Command Create() => new("baseline", "The post-hoc baselines IRR is compared with: RESTA (resta) and Safe LoRA (safelora)")
    {
        BaselineRestaCommand.Create(),
        BaselineSafeLoraCommand.Create(),
    };
}

namespace Irr.Jobs;

/// <summary>
/// The checks a job's <c>Validate</c> makes, with the library's wording: "<c>COMMAND: option must be …, not X</c>", the
/// option named without dashes, as the command line and a recipe both know it (docs/design/jobs.md).
/// </summary>
public static class Validation
{
    /// <summary>A check of a job option with the library's wording, "<paramref name="job"/>: <paramref name="message"/>", where the message names the option as the command and a recipe do (<c>sparsity must be between 0 and 1, not 1.5</c>).</summary>
    /// <exception cref="IrrException">The check failed.</exception>
    public static void Require(bool ok, string job, string message)
    {
        if (!ok) throw new IrrException($"{job}: {message}");
    }

    /// <summary>Requires <paramref name="value"/> ≥ <paramref name="min"/>: "<c>COMMAND: name must be at least min, not value</c>".</summary>
    /// <exception cref="IrrException">The check failed.</exception>
    public static void RequireAtLeast(string command, string name, int value, int min) =>
        Require(value >= min, command, $"{name} must be at least {min}, not {value}");

    /// <summary>
    /// Refuses an output named like a PyTorch file (<c>.pt</c>, <c>.pth</c>, <c>.bin</c>, <c>.ckpt</c>): irr writes
    /// safetensors, and a safetensors file under such a name would fail in <c>torch.load</c>.
    /// </summary>
    /// <exception cref="IrrException">The name ends so.</exception>
    public static void RequireSafetensorsName(string command, string path)
    {
        string extension = Path.GetExtension(path).ToLowerInvariant();
        Require(extension is not (".pt" or ".pth" or ".bin" or ".ckpt"), command,
            $"{path}: irr writes safetensors, which torch.load cannot read; name the output .safetensors (safetensors.torch.load_file reads it in Python)");
    }
}

namespace Irr.IO;

/// <summary>
/// The one rule for an output that exists already, for every command that writes a file or directory: it is refused,
/// with one line naming <c>--overwrite</c> (<c>overwrite: true</c> in a recipe), unless overwrite is given; then it is
/// replaced atomically (the new output is written under a temporary name and renamed into place, so that a failed or
/// interrupted run leaves the old one).
/// </summary>
public static class OutputPolicy
{
    /// <summary>The words of the refusal before the remedy.</summary>
    public const string Exists = "exists and";

    /// <summary>What the refusal tells the user to do.</summary>
    public const string Remedy = "choose another output, or give --overwrite to replace it";

    /// <summary>Refuses an existing output file unless <paramref name="overwrite"/>.</summary>
    /// <exception cref="IrrException">"<c>PATH: exists (choose another output, or give --overwrite to replace it)</c>"; or the path is a directory (<see cref="AtomicFile.RequireFileTarget"/>).</exception>
    public static void RequireNewFile(string path, bool overwrite)
    {
        AtomicFile.RequireFileTarget(path);
        if (File.Exists(path) && !overwrite) throw new IrrException($"{path}: exists ({Remedy})");
    }
}

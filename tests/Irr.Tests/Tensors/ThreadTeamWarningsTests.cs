using System.Collections.Concurrent;
using Irr.Tensors;

namespace Irr.Tests.Tensors;

/// <summary>
/// A warning given on one of the kernels' dedicated worker threads reaches the listener of the command that asked for
/// the work (Diagnostics' listener flows with the execution context, which a long-lived worker thread does not share).
/// </summary>
public class ThreadTeamWarningsTests
{
    [Fact]
    public void WarningsGivenByTheTeamsThreadsReachTheCallersListenerOnly()
    {
        for (int round = 0; round < 3; round++)
        {
            var heard = new ConcurrentBag<string>();
            int used = 0;
            using (Diagnostics.Listen(heard.Add))
                ThreadTeam.Shared.Run(ThreadTeam.Shared.Size, (id, n) =>
                {
                    used = n;
                    Diagnostics.Warn($"round {round} thread {id}");
                });
            Assert.Equal(Enumerable.Range(0, used).Select(id => $"round {round} thread {id}").Order(), heard.Order());
        }

        // Outside any listener the workers drop warnings (they keep no earlier caller's listener).
        var earlier = new ConcurrentBag<string>();
        using (Diagnostics.Listen(earlier.Add)) ThreadTeam.Shared.Run(ThreadTeam.Shared.Size, (_, _) => { });
        ThreadTeam.Shared.Run(ThreadTeam.Shared.Size, (id, _) => Diagnostics.Warn($"unheard {id}"));
        Assert.Empty(earlier);
    }
}

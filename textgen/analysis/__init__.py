"""What the app shows about trained runs: evaluation, leaderboard, comparison, attention views,
curves and the HTML report."""

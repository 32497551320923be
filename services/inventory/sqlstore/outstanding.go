package sqlstore

import (
	"context"
	"fmt"

	"github.com/eventshop/eventshop/services/inventory/domain"
)

// Outstanding returns how many reservations are held (neither committed, released
// nor expired) and how many units they hold. It returns the database's error.
func (s *Store) Outstanding(ctx context.Context) (reservations, units int64, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT COUNT(DISTINCT r.id), COALESCE(SUM(l.quantity), 0)
	FROM reservations r LEFT JOIN reservation_lines l ON l.reservation_id = r.id
	WHERE r.status = $1`, int(domain.StatusHeld)).Scan(&reservations, &units)
	if err != nil {
		return 0, 0, fmt.Errorf("outstanding reservations: %w", err)
	}
	return reservations, units, nil
}
